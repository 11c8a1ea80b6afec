"""The dashboard (数据看板): headline cards and ECharts charts of the figures, a CSV of each
figure's numbers, and drill-down links from every bar and card to the rows behind it.

Each figure is computed once per page by its function in `figures`; the cards, the charts'
data and the CSV are all made from those rows. The page carries the charts' data in
``data-chart`` attributes (JSON); `static/js/dashboard.js` draws them — no inline script.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import Response, abort, current_app, render_template, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import false, or_, select

from app import clock, rollups
from app.dashboards import board_cache, levels
from app.dashboards import figures as F
from app.dashboards.figures import FIGURES, RATE
from app.dashboards.links import (
    EQ,
    FLAG,
    GREATER,
    IN,
    NOT_EQ,
    RELATION,
    SMALLER,
    during,
    list_url,
    month_period,
    quarter_within,
    under,
)
from app.errors import DomainError
from app.extensions import db
from app.i18n import N_, gettext
from app.models.cobuild import (
    AgreementStatus,
    MemberRegistrationStatus,
    RatingStatus,
    RecordStatus,
    UnitRegistrationStatus,
)
from app.models.lists import NEED_DONE, NEED_STATUSES, NeedStatus
from app.models.meetings import MeetingStatus
from app.models.org import Organization
from app.security.scope import current_principal
from app.services import audit

# --- cards and charts -------------------------------------------------------------------------

def percent(rate) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _pct_value(rate):
    return None if rate is None else round(rate * 100, 1)


def card(title, value, note="", url=None, count=None, figure=""):
    """A headline number; `count` is how many rows its link lists (the tests open each)."""
    return {"title": title, "value": value, "note": note, "url": url, "count": count,
            "figure": figure}


# A chart's unit when its values are counts of things.
COUNT_UNITS = ("", "人")


@dataclass
class Chart:
    name: str
    title: str
    figure: str
    kind: str  # bar, stack, hbar, funnel
    categories: list = field(default_factory=list)
    series: list = field(default_factory=list)
    unit: str = ""
    # Per category, the dashboard at the bar's node (a street of a district's chart): a click
    # there drills down instead of opening a list.
    drill: list = field(default_factory=list)
    # What a bar of a per-node chart stands for ("街道" at district scope), said by its title.
    level: str = ""

    def add(self, name, data, links=None, counts=None, stacked=True):
        self.series.append({"name": name, "data": data, "stacked": stacked,
                            "links": links or [None] * len(data),
                            "counts": counts if counts is not None else [None] * len(data)})
        return self

    @property
    def spec(self) -> str:
        return json.dumps({"kind": self.kind, "categories": self.categories,
                           "series": self.series, "unit": self.unit, "drill": self.drill,
                           "drill_hint": gettext("点击查看下级"),
                           "counts": self.counts}, ensure_ascii=False)

    @property
    def counts(self) -> bool:
        """Whether the values are counts (an integer axis: no 1.5 needs); rates, hours and
        points are not."""
        return self.unit in COUNT_UNITS

    @property
    def empty(self) -> bool:
        return not self.categories


@dataclass
class Section:
    title: str
    cards: list = field(default_factory=list)
    charts: list = field(default_factory=list)
    tables: list = field(default_factory=list)


# Figures whose sums alone the board shows, read as such (their CSV lists the rows).
BOARD_READS = {"monthly_service": F.monthly_service_totals}


class Board:
    """The figures of one period and node, as the viewer may see them (BOARD_READS: a figure's
    sums, where the page shows nothing else of it)."""

    def __init__(self, session, period: F.Period, org_id: int | None):
        self.session, self.period, self.org_id = session, period, org_id
        with levels.nodes_read_once():
            self.rows = {name: BOARD_READS.get(name, figure.function)(session, period, org_id)
                         for name, figure in FIGURES.items()}
            # How current the rolled-up figures are (app/rollups.py), on the zone's wall clock.
            as_of = clock.to_local(rollups.as_of(session))
            self.as_of = f"{as_of:%H:%M}" if as_of.date() == clock.today() \
                else f"{as_of:%Y-%m-%d %H:%M}"
            self.sections = [self._needs(), self._lists(), self._cobuild(), self._meetings()]

    # the filters every drill-down of the page carries
    def _in(self, column, datetime_column=True, period=None):
        return [*during(column, period or self.period, datetime_column), *under(self.org_id)]

    def _needs(self) -> Section:
        rows, section = self.rows, Section(N_("需求办理（五单办理）"))
        created = self._in("created_on")
        funnel = rows["need_funnel"]
        total = funnel[0]["count"]
        section.cards.append(card(N_("需求总数"), total, "本期受理登记的需求",
                                  list_url("need", *created), total, "need_funnel"))
        done = rows["need_completion_rate"][0]
        closed_list = list_url("need", ("status", IN, list(NEED_DONE)), *created)
        section.cards.append(card(N_("办结率"), percent(done[RATE]),
                                  f"已办结 {done['closed']} / 受理 {done['needs']}",
                                  closed_list, done["closed"], "need_completion_rate"))
        on_time = rows["need_on_time_rate"][0]
        section.cards.append(card(N_("按期办结率"), percent(on_time[RATE]),
                                  f"按期 {on_time['on_time']} / 办结 {on_time['closed']}",
                                  list_url("need", ("closed_on_time", FLAG, 1), *created),
                                  on_time["on_time"], "need_on_time_rate"))
        # Closed in the period by the day of 办结, whenever raised: a need handled over two
        # months, or an office's past work brought in later, counts in its month of 办结.
        months = rows["needs_per_month"]
        closed = sum(r["closed"] for r in months)
        section.cards.append(card(N_("本期办结"), closed, "按办结时间统计，不论何时受理",
                                  list_url("need", ("status", IN, list(NEED_DONE)),
                                           *self._in("completed_on")),
                                  closed, "needs_per_month"))
        mean = rows["need_mean_time_to_close"][0]
        section.cards.append(card(N_("平均办结时长"),
                                  "—" if mean["hours"] is None else f"{mean['hours']} 小时",
                                  f"已办结 {mean['closed']} 件", closed_list, mean["closed"],
                                  "need_mean_time_to_close"))
        satisfaction = rows["need_mean_satisfaction"][0]
        section.cards.append(card(N_("平均满意度"),
                                  "—" if satisfaction["mean"] is None
                                  else f"{satisfaction['mean']} 分",
                                  f"回访 {satisfaction['rated']} 件",
                                  list_url("need", ("status", EQ, NeedStatus.VISITED), *created),
                                  satisfaction["rated"], "need_mean_satisfaction"))
        by_community = rows["needs_by_community"]
        overdue = sum(r["overdue"] for r in by_community)
        section.cards.append(card(N_("逾期需求"), overdue, "当前环节超过时限仍未办结",
                                  list_url("need", ("overdue", FLAG, 1), *created), overdue,
                                  "needs_by_community"))

        chart = Chart("need_funnel", N_("需求办理漏斗"), "need_funnel", "funnel",
                      [r["stage"] for r in funnel])
        chart.add("需求数", [r["count"] for r in funnel],
                  [list_url("need", *created) if i == 0 else
                   list_url("need", ("status", IN, r["statuses"]), *created)
                   for i, r in enumerate(funnel)], [r["count"] for r in funnel])
        section.charts.append(chart)

        chart = Chart("needs_per_month", N_("需求：登记与办结（按月）"), "needs_per_month", "bar",
                      [r["month"] for r in months])
        for key, label, column, extra in (
                ("raised", "登记", "created_on", []),
                ("closed", "办结", "completed_on", [("status", IN, list(NEED_DONE))])):
            chart.add(label, [r[key] for r in months],
                      [list_url("need", *extra, *self._in(column, period=month_period(r["month"])))
                       if r[key] else None for r in months], [r[key] for r in months])
        section.charts.append(chart)

        bars = self._bars(by_community, "community_id", lambda b: b.total("needs"))
        chart = self._node_chart("needs_by_community", N_("各社区需求办理"), bars)
        period_only = during("created_on", self.period)
        for key, label, extra in (("needs", "需求数", []),
                                  ("closed", "已办结", [("status", IN, list(NEED_DONE))]),
                                  ("overdue", "逾期", [("overdue", FLAG, 1)])):
            chart.add(label, [b.total(key) for b in bars],
                      [list_url("need", ("community", RELATION, b.node_id), *extra, *period_only)
                       if b.own and b.node_id else None for b in bars],
                      [b.total(key) for b in bars])
        section.charts.append(chart)

        steps = rows["overdue_by_step"]
        chart = Chart("overdue_by_step", N_("逾期需求（按环节）"), "overdue_by_step", "bar",
                      [r["step"] for r in steps])
        chart.add("逾期", [r["overdue"] for r in steps],
                  [list_url("need", ("overdue", FLAG, 1), ("status", EQ, r["status"]), *created)
                   for r in steps], [r["overdue"] for r in steps])
        section.charts.append(chart)

        late = rows["overdue_by_category"]
        chart = Chart("overdue_by_category", N_("逾期需求（按类别）"), "overdue_by_category", "bar",
                      [r["category"] for r in late])
        chart.add("逾期", [r["overdue"] for r in late],
                  [list_url("need", ("overdue", FLAG, 1), ("category", RELATION, r["category_id"]),
                            *created) for r in late], [r["overdue"] for r in late])
        section.charts.append(chart)

        section.charts.append(self._category_status(
            "needs_by_category_and_status", "需求清单：类别与状态", "need", created))
        section.tables.append({
            "figure": "overdue_needs", "title": N_("逾期需求（时限最早的在前）"),
            "columns": ["title", "community", "status", "step", "urgency", "deadline", "unit"],
            "labels": FIGURES["overdue_needs"].columns, "rows": rows["overdue_needs"],
            "url": list_url("need", ("overdue", FLAG, 1), *created), "count": overdue})
        return section

    def _category_status(self, figure, title, resource, filters) -> Chart:
        rows = self.rows[figure]
        # The categories by their total, most first (then by name).
        totals: dict = {}
        for r in rows:
            totals[(r["category"], r["category_id"])] = \
                totals.get((r["category"], r["category_id"]), 0) + r["count"]
        categories = sorted(totals, key=lambda c: (-totals[c], c[0], c[1] or 0))
        statuses = [s for s in self._status_order(resource) if any(r["status"] == s for r in rows)]
        counts = {(r["category_id"], r["status"]): r["count"] for r in rows}
        chart = Chart(figure, title, figure, "stack", [c for c, _ in categories])
        for status in statuses:
            values = [counts.get((cid, status), 0) for _, cid in categories]
            chart.add(status, values,
                      [list_url(resource, ("category", RELATION, cid), ("status", EQ, status),
                                *filters) if counts.get((cid, status)) else None
                       for _, cid in categories], values)
        return chart

    @staticmethod
    def _status_order(resource) -> list[str]:
        from app.models.lists import RESOURCE_STATUSES, SERVICE_STATUSES

        return list({"need": NEED_STATUSES, "resource": RESOURCE_STATUSES,
                     "service_item": SERVICE_STATUSES}[resource])

    def _lists(self) -> Section:
        rows, section = self.rows, Section(N_("三单与微心愿"))
        match = rows["need_match_rate"][0]
        section.cards.append(card(N_("需求匹配率"), percent(match[RATE]),
                                  f"已匹配 {match['matched']} / 受理 {match['needs']}",
                                  list_url("need", ("matched", FLAG, 1),
                                           ("status", NOT_EQ, NeedStatus.REJECTED), *self._in("created_on")),
                                  match["matched"], "need_match_rate"))
        claim = rows["wish_claim_rate"][0]
        section.cards.append(card(N_("微心愿认领率"), percent(claim[RATE]),
                                  f"已认领 {claim['claimed']} / 已发布 {claim['published']}",
                                  list_url("micro_wish", ("status", IN, list(F.WISH_CLAIMED)),
                                           *self._in("created_on")),
                                  claim["claimed"], "wish_claim_rate"))
        year = [("year", EQ, self.period.year), *under(self.org_id)]
        section.charts.append(self._category_status(
            "resources_by_category_and_status", f"资源清单（{self.period.year}年度）", "resource",
            year))
        section.charts.append(self._category_status(
            "service_items_by_category_and_status", f"服务清单（{self.period.year}年度）",
            "service_item", year))
        months = rows["wishes_per_month"]
        chart = Chart("wishes_per_month", N_("微心愿：发布、认领、实现（按月）"), "wishes_per_month", "bar",
                      [r["month"] for r in months])
        for key, label, column in (("posted", "发布", "created_on"), ("claimed", "认领", "claimed_on"),
                                   ("fulfilled", "实现", "fulfilled_on")):
            chart.add(label, [r[key] for r in months],
                      [list_url("micro_wish", *self._in(column, period=month_period(r["month"])))
                       if r[key] else None for r in months], [r[key] for r in months])
        section.charts.append(chart)
        return section

    def _registered(self, column):
        """Confirmed registrations up to the period's end (a current period needs no date
        filter: no registration is dated in the future)."""
        if self.period.end >= clock.today():
            return []
        return [(column, SMALLER, self.period.end + timedelta(days=1))]

    def _cobuild(self) -> Section:
        rows, section = self.rows, Section(N_("双报到、积分与星级"))
        regs = rows["registration_rates"]
        totals = {k: sum(r[k] for r in regs) for k in ("units", "registered_units", "members",
                                                       "registered_members")}
        registered = self._registered("registered_on")
        section.cards.append(card(
            N_("单位报到率"), percent(F.ratio(totals["registered_units"], totals["units"])),
            f"已报到 {totals['registered_units']} / 在册 {totals['units']}",
            list_url("unit_registration", ("status", EQ, UnitRegistrationStatus.REGISTERED), *registered,
                     *under(self.org_id)), totals["registered_units"], "registration_rates"))
        section.cards.append(card(
            N_("党员报到率"), percent(F.ratio(totals["registered_members"], totals["members"])),
            f"已报到 {totals['registered_members']} / 在职党员 {totals['members']}",
            list_url("member_registration", ("status", EQ, MemberRegistrationStatus.REGISTERED), *registered,
                     *under(self.org_id)), totals["registered_members"], "registration_rates"))
        def rate(bar, part, whole):
            return F.ratio(bar.total(part), bar.total(whole))

        bars = self._bars(regs, "community_id", lambda b: rate(b, "registered_units", "units"))
        chart = self._node_chart("registration_rates", N_("各社区双报到报到率"), bars, unit="%")
        for resource, key, whole, label in (
                ("unit_registration", "registered_units", "units", "单位报到率"),
                ("member_registration", "registered_members", "members", "党员报到率")):
            chart.add(label, [_pct_value(rate(b, key, whole)) for b in bars],
                      [list_url(resource, ("community", RELATION, b.node_id),
                                ("status", EQ, "已报到"), *registered)
                       if b.own and b.node_id else None for b in bars],
                      [b.total(key) for b in bars])
        section.charts.append(chart)

        service = rows["monthly_service"]
        unserved = sum(r["unserved"] for r in service)
        first, _ = F.service_month(self.period)
        current = first == clock.today().replace(day=1)  # the list's flag reads this month
        section.cards.append(card(
            N_("本月未服务党员"), unserved,
            f"{first:%Y年%m月}：已报到 {sum(r['registered'] for r in service)} 人，"
            f"已服务 {sum(r['served'] for r in service)} 人",
            list_url("member_registration", ("status", EQ, MemberRegistrationStatus.REGISTERED),
                     ("served_this_month", FLAG, 0), *under(self.org_id)) if current else None,
            unserved if current else None, "monthly_service"))

        pledges = rows["agreement_three_ones"]
        total, met = (sum(r[k] for r in pledges) for k in ("agreements", "all_met"))
        year = date(self.period.year, 1, 1), date(self.period.year, 12, 31)
        section.cards.append(card(
            N_("协议“三个一”达标率"), percent(F.ratio(met, total)),
            f"{self.period.year}年三个一均达标 {met} / 有效协议 {total}",
            list_url("agreement", ("status", EQ, AgreementStatus.SIGNED),
                     ("valid_from", SMALLER, year[1] + timedelta(days=1)),
                     ("valid_to", GREATER, year[0] - timedelta(days=1)), *under(self.org_id)),
            total, "agreement_three_ones"))
        states = rows["agreement_states"]
        signed, expiring, lapsed = (sum(r[k] for r in states) for k in ("signed", "expiring", "lapsed"))
        # The monthly report's figures (its CSV below): the lists filter neither by signing
        # date nor by entry time, so these cards link nowhere.
        section.cards.append(card(N_("本期签订协议"), signed,
                                  f"期末即将到期 {expiring}，本期到期 {lapsed}",
                                  figure="agreement_states"))
        paid = rows["points_paid"]
        section.cards.append(card(
            N_("本期积分发放"), f"{sum(r['net'] for r in paid):g} 分",
            "；".join(f"{r['subject']}记分 {r['paid']:g}、冲正 {r['reversed']:g}" for r in paid),
            figure="points_paid"))

        bars = self._bars(rows["members_by_grid"], "grid_id", lambda b: b.total("members"))
        chart = self._node_chart("members_by_grid", N_("各网格党员、红色网格员、党员中心户"), bars,
                                 unit="人")
        for key, label, flag in (("members", "党员", None), ("red", "红色网格员", "is_red_grid_worker"),
                                 ("household", "党员中心户", "is_household_center")):
            chart.add(label, [b.total(key) for b in bars],
                      [list_url("member", *under(b.node_id), *under(self.org_id),
                                *([(flag, EQ, True)] if flag else []))
                       if b.own and b.node_id and b.total(key) else None for b in bars],
                      [b.total(key) for b in bars])
        section.charts.append(chart)

        hours = rows["service_hours_per_month"]
        total_hours = round(sum(r["hours"] for r in hours), 1)
        records = sum(r["records"] for r in hours)
        section.cards.append(card(N_("服务时长"), f"{total_hours:g} 小时", f"已认证服务记录 {records} 条",
                                  list_url("service_record", ("status", EQ, RecordStatus.CERTIFIED),
                                           *self._in("served_on", False)),
                                  records, "service_hours_per_month"))
        chart = Chart("service_hours_per_month", N_("党员服务时长（按月，已认证）"),
                      "service_hours_per_month", "bar", [r["month"] for r in hours], unit="小时")
        chart.add("服务时长", [r["hours"] for r in hours],
                  [list_url("service_record", ("status", EQ, RecordStatus.CERTIFIED),
                            *self._in("served_on", False, month_period(r["month"])))
                   if r["records"] else None for r in hours], [r["records"] for r in hours])
        section.charts.append(chart)

        quarters = self.period.quarters
        for figure, title, relation in (
                ("member_points_leaderboard", "党员积分排行", "member"),
                ("unit_points_leaderboard", "单位积分排行", "unit")):
            board = rows[figure]
            chart = Chart(figure, f"{title}（{'、'.join(quarters)}）", figure, "hbar",
                          [r["name"] for r in board], unit="分")
            chart.add("积分", [r["points"] for r in board],
                      [list_url("point_entry", (relation, RELATION, r["id"]),
                                ("period", IN, quarters), *under(self.org_id)) for r in board],
                      [r["entries"] for r in board])
            section.charts.append(chart)

        stars = rows["star_distribution"]
        # The latest published ratings up to the period (the figure says which: the seed's
        # are last year's, which a this-year dashboard showed as nothing).
        rated = stars[0]["period"] if stars else self.period.rating_period
        for subject, label in (("unit", "驻区单位"), ("member", "党员")):
            bars = self._bars([r for r in stars if r["subject_type"] == subject],
                              "community_id", lambda b: b.total("count"))
            chart = self._node_chart(f"star_distribution_{subject}",
                                     f"{label}星级分布（{rated}，已公示）", bars, "stack",
                                     figure="star_distribution")
            for level in (5, 4, 3, 2, 1, None):
                values = [sum(r["count"] for r in b.rows if r["stars"] == level) for b in bars]
                if not any(values):
                    continue
                chart.add(f"{level}星" if level else "未评星", values,
                          [list_url("star_rating", ("subject_type", EQ, subject),
                                    ("stars", EQ, level), ("period", EQ, rated),
                                    ("status", EQ, RatingStatus.PUBLISHED),
                                    ("within", "within", b.node_id))
                           if level and b.own and b.node_id and n else None
                           for b, n in zip(bars, values)], values)
            section.charts.append(chart)
        return section

    # --- charts of per-node figures, at the size of the viewer's scope (app/dashboards/levels.py)

    def _bars(self, rows, key, value) -> list[levels.Bar]:
        return levels.bars_of(self.session, rows, key, value)

    def _node_chart(self, name, title, bars, kind="bar", unit="", figure=None) -> Chart:
        """A chart whose categories are `bars`; a bar above the rows' own node drills down to
        the dashboard at its node, when the viewer may choose that node."""
        above = {b.node_id for b in bars if not b.own and b.node_id}
        drillable = set(self.session.execute(node_choices().with_only_columns(Organization.id)
                                             .where(Organization.id.in_(above))).scalars()) \
            if above else set()
        chart = Chart(name, title, figure or name, kind, [b.name for b in bars], unit=unit)
        kinds = {b.kind for b in bars if b.node_id}
        chart.level = levels.KIND_WORDS.get(kinds.pop(), "") if len(kinds) == 1 else ""
        chart.drill = [url_for("DashboardView.index", period=self.period.code, org=b.node_id)
                       if b.node_id in drillable else None for b in bars]
        return chart

    def _meetings(self) -> Section:
        rows, section = self.rows, Section(N_("联席会议"))
        meetings = rows["meetings_held_vs_planned"]
        planned = sum(r["planned"] for r in meetings)
        held = sum(r["held"] for r in meetings)
        planned_in = self._in("planned_date", False, self.period.due())
        section.cards.append(card(N_("会议召开率"), percent(F.ratio(held, planned)),
                                  f"已召开 {held} / 计划 {planned}",
                                  list_url("meeting", ("status", EQ, MeetingStatus.HELD), *planned_in),
                                  held, "meetings_held_vs_planned"))
        attendance = rows["meeting_attendance_rate"]
        expected = sum(r["expected"] for r in attendance)
        present = sum(r["present"] for r in attendance)
        section.cards.append(card(N_("参会率"), percent(F.ratio(present, expected)),
                                  f"实到 {present} / 应到 {expected}",
                                  figure="meeting_attendance_rate"))
        levels = rows["leader_compliance"]
        at = sum(r["present"] for r in levels)
        met = sum(r["compliant"] for r in levels)
        section.cards.append(card(N_("参会职级达标率"), percent(F.ratio(met, at)),
                                  f"按各类会议的职级要求：达标 {met} / 出席 {at}",
                                  figure="leader_compliance"))
        resolutions = rows["resolutions_on_time"]
        overdue = sum(r["overdue"] for r in resolutions)
        due = sum(r["total"] for r in resolutions)
        on_time = sum(r["closed_on_time"] for r in resolutions)
        deadline_in = self._in("deadline", False)
        section.cards.append(card(N_("议定事项按期办结率"), percent(F.ratio(on_time, due)),
                                  f"按期办结 {on_time} / 到期 {due}", figure="resolutions_on_time"))
        section.cards.append(card(N_("逾期议定事项"), overdue, "过了办结时限仍未办结",
                                  list_url("resolution", ("overdue", FLAG, 1), *deadline_in),
                                  overdue, "resolutions_on_time"))

        chart = Chart("meetings_held_vs_planned", N_("会议召开情况（按季度、类型）"),
                      "meetings_held_vs_planned", "bar",
                      [f"{r['quarter']} {r['type']}" for r in meetings])
        for key, label, extra in (("planned", "计划", []),
                                  ("held", "已召开", [("status", EQ, MeetingStatus.HELD)])):
            chart.add(label, [r[key] for r in meetings],
                      [list_url("meeting", ("type", EQ, r["type"]), *extra,
                                *self._in("planned_date", False,
                                          quarter_within(r["quarter"], self.period.due())))
                       if r[key] else None for r in meetings], [r[key] for r in meetings])
        section.charts.append(chart)

        chart = Chart("meeting_attendance_rate", N_("参会率与参会职级达标率（按会议类型）"),
                      "meeting_attendance_rate", "bar", [r["type"] for r in attendance], unit="%")
        chart.add("参会率", [_pct_value(r[RATE]) for r in attendance])
        by_type = {r["type"]: r for r in levels}
        chart.add("职级达标率", [_pct_value(by_type[r["type"]][RATE]) if r["type"] in by_type
                                  else None for r in attendance])
        section.charts.append(chart)

        chart = Chart("resolutions_on_time", N_("议定事项办理（按办结时限所在季度）"),
                      "resolutions_on_time", "stack", [r["quarter"] for r in resolutions])
        for key, label in (("closed_on_time", "按期办结"), ("closed_late", "超期办结"),
                           ("open", "未办结")):
            chart.add(label, [r[key] for r in resolutions])
        chart.add("其中逾期", [r["overdue"] for r in resolutions],
                  [list_url("resolution", ("overdue", FLAG, 1),
                            *self._in("deadline", False, quarter_within(r["quarter"], self.period)))
                   if r["overdue"] else None for r in resolutions],
                  [r["overdue"] for r in resolutions], stacked=False)
        section.charts.append(chart)
        return section


# --- the organisation box: streets and communities within the viewer's scope -------------------

# The nodes a dashboard may be narrowed to (a district of a city, a street, a community).
DASHBOARD_NODES = ("district", "street", "community")


def node_choices(principal=None):
    principal = principal or current_principal()
    stmt = select(Organization).where(Organization.type.in_(DASHBOARD_NODES))
    if principal.sees_all:
        return stmt
    if principal.org_paths:
        return stmt.where(or_(*[Organization.path.like(p + "%") for p in principal.org_paths]))
    return stmt.where(false())


def _chosen() -> tuple[F.Period, int | None, Organization | None]:
    """The period and node asked for; a node outside the choices is one that does not exist."""
    try:
        period = F.parse_period(request.args.get("period"))
    except DomainError:
        abort(404)
    node = None
    org_id = request.args.get("org", type=int)
    if org_id:
        node = db.session.execute(node_choices().where(Organization.id == org_id)).scalar()
        if node is None:
            abort(404)
    return period, (node.id if node else None), node


def _up(node, period) -> str | None:
    """The way back from a drilled-down node: the dashboard at its parent when the viewer may
    choose it, else at the viewer's whole scope."""
    if node is None:
        return None
    parent = db.session.execute(node_choices().with_only_columns(Organization.id)
                                .where(Organization.id == node.parent_id)).scalar() \
        if node.parent_id else None
    return url_for("DashboardView.index", period=period.code,
                   **({"org": parent} if parent else {}))


def _board(period: F.Period, org_id: int | None, query: dict) -> dict:
    """The board's sections as HTML and how current they are: a copy kept for the same viewer
    scope, node, period and language while the rollups it read are unchanged (and at most
    DASHBOARD_CACHE_SECONDS old), else computed and kept (app/dashboards/board_cache.py)."""
    key = None
    if board_cache.enabled():
        reusable, generation = rollups.generation(db.session)
        key = board_cache.board_key(period.code, org_id, generation)
        kept = board_cache.get(key) if reusable else None
        if kept is not None:
            return kept
    board = Board(db.session, period, org_id)
    made = {"html": render_template("dashboards/board.html", board=board, query=query,
                                    figures=FIGURES),
            "as_of": board.as_of}
    if key is not None:
        board_cache.put(key, made)
    return made


class DashboardView(BaseView):
    route_base = "/dashboard"
    default_view = "index"
    class_permission_name = "dashboard"
    method_permission_name = {"index": "read", "figure_csv": "read", "nodes": "read"}

    @expose("/")
    @has_access
    def index(self):
        period, org_id, node = _chosen()
        query = {"period": period.code, **({"org": org_id} if org_id else {})}
        board = _board(period, org_id, query)
        db.session.commit()  # the rollup cells the page brought up to date (no job queue)
        choices = F.period_choices()
        if period.code not in {p.code for p in choices}:
            choices.insert(0, period)
        return self.render_template(
            "dashboards/index.html", board_html=Markup(board["html"]), as_of=board["as_of"],
            cache_seconds=current_app.config["DASHBOARD_CACHE_SECONDS"], period=period,
            periods=choices, node=node, query=query, up=_up(node, period), title="数据看板")

    @expose("/figure/<name>.csv")
    @has_access
    def figure_csv(self, name):
        figure = FIGURES.get(name)
        if figure is None:
            abort(404)
        period, org_id, _ = _chosen()
        rows = figure.function(db.session, period, org_id)
        from app.exports import cell_value
        from app.spreadsheet import neutralise

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["期间", *figure.columns.values()])
        for row in rows:
            writer.writerow([period.label] + [neutralise(cell_value(row.get(key)))
                                              for key in figure.columns])
        audit.record(db.session, "export", "dashboard", changes={
            "format": "csv", "figure": name, "period": period.code, "org": org_id,
            "rows": len(rows)})
        db.session.commit()
        filename = f"{name}-{period.code}.csv"
        return Response("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={filename}"})

    @expose("/nodes")
    @has_access
    def nodes(self):
        """The organisation box's choices (select2), searched as the user types."""
        from app.views.base import choices_response  # app.views imports this module

        return choices_response(node_choices())
