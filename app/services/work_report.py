"""月汇报: the monthly report's figures, its workflow and its documents (.docx, PDF).

- **Figures** are the dashboard's (`app.dashboards.figures.FIGURES`): each section names figure
  definitions, computed for the report's node (its subtree) and month by the very functions the
  dashboard and its CSV call — there is no second query to drift apart. Live while the report
  is written; `submit` freezes them into the row, so a submitted report never changes.
- **Workflow** (`REPORT_FLOW`, the engine of app/services/workflow.py): 草稿 → 已提交 → 已通过 /
  已退回 (with a reason) → 已提交 again, the same row, its moves in the audit trail. The node's
  own admin submits; the admins of the node above review (a community's by its street, a
  street's by 组织部); a district's report is final when filed. A month not ended is
  previewed, not submitted.
- **Documents**: python-docx writes the .docx (title, headings, the figures' tables, charts,
  page numbers, a signature line); charts are PNGs drawn by matplotlib with a CJK font found
  through fontconfig; LibreOffice turns the .docx into a PDF, each call with a profile of its
  own. Narrative text goes into runs as text: python-docx escapes it, so markup stays inert.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import select

from app import clock, rollups
from app.dashboards.figures import FIGURES, Period
from app.errors import DomainError
from app.i18n import N_, gettext
from app.models.org import Organization
from app.models.reports import (
    EDITABLE,
    REPORTING_NODES,
    ReportStatus,
    WorkReport,
    month_ended,
    own_node,
    parse_month,
    reviewed_nodes,
    reviews_below,
)
from app.security.principal import Principal, unscoped
from app.security.roles import ADMIN_GROUP
from app.services.workflow import Field, Transition, Workflow

# --- the figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    title: str
    figures: tuple[str, ...]


# What the report tells, in the order it tells it (DOMAIN.md §5's figures for one month).
SECTIONS = (
    Section(N_("需求办理（五单办理）"), ("need_funnel", "needs_per_month", "need_completion_rate",
                             "need_on_time_rate",
                             "overdue_by_step", "overdue_by_category",
                             "needs_by_category_and_status")),
    Section(N_("三单与微心愿"), ("need_match_rate", "resources_by_category_and_status",
                       "service_items_by_category_and_status", "wish_claim_rate",
                       "wishes_per_month")),
    Section(N_("双报到与党员服务"), ("registration_rates", "monthly_service", "members_not_served",
                             "points_paid")),
    Section(N_("联席会议"), ("meetings_held_vs_planned", "leader_compliance", "resolutions_on_time")),
    Section(N_("共驻共建协议"), ("agreement_states",)),
)
REPORT_FIGURES = tuple(name for section in SECTIONS for name in section.figures)


def month_period(month: str) -> Period:
    first, last = parse_month(month)
    return Period(f"{first:%Y-%m}", first, last)


def compose(session, org_id: int, month: str) -> dict[str, list[dict]]:
    """The report's figures for the node's subtree and the month, as the dashboard computes
    them (through the session: within the acting user's scope, like the dashboard)."""
    period = month_period(month)
    return {name: FIGURES[name].function(session, period, org_id) for name in REPORT_FIGURES}


def figures_of(session, report: WorkReport) -> dict[str, list[dict]]:
    """The figures a report shows: frozen once submitted, live before."""
    frozen = report.frozen
    if frozen is not None:
        return frozen
    try:
        month_period(report.month)
    except DomainError:  # a month stored by hand or import that is no month: nothing to show
        return {}
    return _plain(compose(session, report.org_id, report.month))


def _plain(figures: dict) -> dict:
    """As JSON keeps them (dates as ISO text), so that live and frozen read alike."""
    return json.loads(json.dumps(figures, ensure_ascii=False, default=str))


def cell(row: dict, key: str) -> str:
    """A figure's cell as the report prints it: rates in per cent, lists joined."""
    value = row.get(key)
    if value is None:
        return "—"
    if key.endswith("rate") and isinstance(value, (int, float)):
        return f"{value * 100:.1f}%"
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tables(figures: dict) -> list[dict]:
    """Sections of tables (title, column labels, rows of cells) for the page and the .docx."""
    result = []
    for section in SECTIONS:
        items = []
        for name in section.figures:
            figure, rows = FIGURES[name], figures.get(name) or []
            keys = [k for k in figure.columns if k != "statuses"]
            items.append({"name": name, "title": gettext(figure.title),
                          "labels": [gettext(figure.columns[k]) for k in keys],
                          "rows": [[cell(row, k) for k in keys] for row in rows]})
        result.append({"title": gettext(section.title), "tables": items})
    return result


# --- who writes, who reviews -------------------------------------------------------------------

def node_of(session, report: WorkReport) -> Organization:
    with unscoped():
        return report.org or session.get(Organization, report.org_id)


def _parent(node: Organization) -> Organization | None:
    from app.extensions import db

    with unscoped():
        return db.session.get(Organization, node.parent_id) if node.parent_id else None


def may_review(report: WorkReport, principal: Principal) -> bool | str:
    """The admins of the node above: a community's street, a street's 组织部 — never the
    report's own node."""
    node = report.org
    if principal.system:
        return True
    if node is None or own_node(node, principal) and "Admin" not in principal.role_names:
        return "本级党组织不能审核自己的月汇报"
    parent = _parent(node)
    if parent is None:
        return "区级月汇报提交即为定稿，无需审核"
    return True if reviews_below(parent, principal) else "月汇报由上一级党组织审核"


def _may_submit(report: WorkReport, principal: Principal, final: bool) -> bool | str:
    node = report.org
    if node is None or not own_node(node, principal):
        return "月汇报由本级党组织的管理员提交"
    if (node.type == "district") != final:
        return "区级月汇报提交即为定稿" if node.type == "district" else "月汇报须报上一级审核"
    try:
        ended = month_ended(report.month)
    except DomainError as exc:
        return str(exc)
    if not ended:
        return f"{report.month_label}尚未结束，只能预览，不能提交"
    return True


def _freeze(report: WorkReport, data: dict, principal: Principal) -> None:
    from app.extensions import db

    if not month_ended(report.month):  # the rule said so; said again at the write
        raise DomainError(f"{report.month_label}尚未结束，只能预览，不能提交")
    with rollups.raw_rows(db.session):  # frozen for good: not a minute behind (app/rollups.py)
        figures = _plain(compose(db.session, report.org_id, report.month))
    report.figures = json.dumps(figures, ensure_ascii=False)
    report.submitted_on = clock.utcnow()
    report.submitted_by_id = principal.user_id
    report.reviewed_on = report.reviewed_by_id = None


def _filed(report, data, principal):
    _freeze(report, data, principal)
    report.reviewed_on = report.submitted_on  # a district's report is final as filed


def _reviewed(report, data, principal):
    report.reviewed_on = clock.utcnow()
    report.reviewed_by_id = principal.user_id


def _returned(report, data, principal):
    _reviewed(report, data, principal)
    report.return_reason = data["reason"]
    # Returned, it is written again: its figures are live until it is submitted anew.
    report.figures = None


REVIEWERS = frozenset({"OrgAdmin", "StreetAdmin"})
REPORT_FLOW = Workflow(WorkReport, (
    Transition("submit", "提交", EDITABLE, ReportStatus.SUBMITTED, ADMIN_GROUP,
               rule=lambda r, p: _may_submit(r, p, final=False), apply=_freeze,
               confirm="提交后数据将固定，汇报不能再修改，确认提交？", style="success"),
    Transition("file", "提交（定稿）", EDITABLE, ReportStatus.APPROVED, frozenset({"OrgAdmin"}),
               rule=lambda r, p: _may_submit(r, p, final=True), apply=_filed,
               confirm="区级月汇报提交即为定稿，确认提交？", style="success"),
    Transition("approve", "审核通过", (ReportStatus.SUBMITTED,), ReportStatus.APPROVED, REVIEWERS,
               rule=may_review, apply=_reviewed, style="success",
               lost="该月汇报已被他人审核，请刷新后查看"),
    Transition("return", "退回", (ReportStatus.SUBMITTED,), ReportStatus.RETURNED, REVIEWERS,
               rule=may_review, apply=_returned, style="danger",
               fields=(Field("reason", "退回原因", "textarea", required=True),),
               lost="该月汇报已被他人审核，请刷新后查看"),
))


# --- opening a month's report ------------------------------------------------------------------

def existing(session, org_id, month: str) -> WorkReport | None:
    """The live report of the node and month, as the acting user may read it."""
    try:
        first, _ = parse_month(month)
    except DomainError:
        return None
    return session.execute(select(WorkReport).where(
        WorkReport.org_id == org_id, WorkReport.month == f"{first:%Y-%m}")).scalar()


def last_month(today: date | None = None) -> str:
    today = today or clock.today()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}-{month:02d}"


def missing_reports(session, principal: Principal, month: str | None = None) -> list[Organization]:
    """The nodes one reviews (the children of one's node: a street's communities, 组织部's
    streets) that have not submitted `month`'s report (default: last month's)."""
    month = month or last_month()
    parents = reviewed_nodes(principal)
    if parents is None:
        return []
    sent = select(WorkReport.org_id).where(
        WorkReport.month == month, WorkReport.status.in_((ReportStatus.SUBMITTED,
                                                          ReportStatus.APPROVED)))
    return list(session.execute(
        select(Organization).where(Organization.parent_id.in_(parents),
                                   Organization.type.in_(REPORTING_NODES),
                                   Organization.active.is_(True),
                                   Organization.id.not_in(sent))
        .order_by(Organization.code, Organization.id)).scalars())


# --- documents ------------------------------------------------------------------------------

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC",
                "SimHei", "Microsoft YaHei")


class NoCjkFont(DomainError):
    """No font with Chinese glyphs on the server: a chart would draw boxes."""


def cjk_font() -> str:
    """A font file with Chinese glyphs: REPORT_CJK_FONT if set, else what fontconfig finds."""
    configured = current_app.config.get("REPORT_CJK_FONT")
    if configured:
        if not os.path.exists(configured):
            raise NoCjkFont(f"REPORT_CJK_FONT 指向的字体文件不存在：{configured}")
        return configured
    fc = shutil.which("fc-match")
    if fc:
        for family in CJK_FAMILIES:
            found = subprocess.run([fc, "-f", "%{file}\n%{lang}", f"{family}:lang=zh-cn"],
                                   check=False, capture_output=True, text=True, timeout=10)
            path, _, langs = found.stdout.partition("\n")
            if found.returncode == 0 and path and "zh-cn" in langs and os.path.exists(path):
                return path
    raise NoCjkFont("服务器上没有中文字体，无法绘制图表：请安装 fonts-noto-cjk，"
                    "或以 REPORT_CJK_FONT 指定中文字体文件")


def _charts(figures: dict) -> list[tuple[str, bytes]]:
    """The report's charts as PNGs: the needs' funnel and the meetings held against planned."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib import font_manager
    from matplotlib.figure import Figure as Plot

    font = font_manager.FontProperties(fname=cjk_font())
    result = []
    funnel = figures.get("need_funnel") or []
    meetings = figures.get("meetings_held_vs_planned") or []
    charts = [(gettext("需求办理漏斗"), [r["stage"] for r in funnel],
               [(gettext("需求数"), [r["count"] for r in funnel])])]
    if meetings:
        charts.append((gettext("会议召开情况"), [f"{r['type']}" for r in meetings],
                       [(gettext("计划"), [r["planned"] for r in meetings]),
                        (gettext("已召开"), [r["held"] for r in meetings])]))
    for title, categories, series in charts:
        plot = Plot(figsize=(6.4, 3.2), dpi=150)
        axes = plot.subplots()
        width = 0.8 / len(series)
        for i, (label, values) in enumerate(series):
            axes.bar([x + i * width for x in range(len(categories))], values, width, label=label)
        axes.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(categories))])
        axes.set_xticklabels(categories, fontproperties=font)
        axes.set_title(title, fontproperties=font)
        axes.legend(prop=font)
        axes.yaxis.get_major_locator().set_params(integer=True)
        plot.tight_layout()
        buffer = io.BytesIO()
        plot.savefig(buffer, format="png")
        result.append((title, buffer.getvalue()))
    return result


def _page_number(paragraph) -> None:
    """第 X 页 共 Y 页, as Word fields (PAGE, NUMPAGES) that the reader fills in."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def field(code):
        run = paragraph.add_run()
        for kind, text in (("begin", None), (None, code), ("separate", None), (None, "1"),
                           ("end", None)):
            if kind:
                element = OxmlElement("w:fldChar")
                element.set(qn("w:fldCharType"), kind)
            elif text == code:
                element = OxmlElement("w:instrText")
                element.set(qn("xml:space"), "preserve")
                element.text = f" {code} "
            else:
                element = OxmlElement("w:t")
                element.text = text
            run._r.append(element)

    # One msgid with the fields as markers, so that a language may order them its own way.
    said = gettext("第 %(page)s 页 共 %(pages)s 页", page="\0PAGE\0", pages="\0NUMPAGES\0")
    for number, part in enumerate(said.split("\0")):
        if number % 2:
            field(part)
        elif part:
            paragraph.add_run(part)


def _cjk_style(document) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    for name in ("Normal", "Heading 1", "Heading 2", "Title"):
        style = document.styles[name]
        style.font.name = "Noto Sans CJK SC"
        fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
        fonts.set(qn("w:eastAsia"), "Noto Sans CJK SC")
    document.styles["Normal"].font.size = Pt(10.5)


def title_of(report: WorkReport, node: Organization) -> str:
    """The document's title (the print page's too): one msgid, so English orders it its way."""
    return gettext("%(org)s%(month)s共驻共建工作月汇报", org=node.name, month=report.month_label)


def docx_bytes(session, report: WorkReport) -> bytes:
    """The report as a Word document."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    node = node_of(session, report)
    figures = figures_of(session, report)
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)  # A4
    section.left_margin = section.right_margin = Cm(2.2)
    _cjk_style(document)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)

    title = document.add_heading(title_of(report, node), 0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    state = document.add_paragraph(
        f"{gettext('状态')}：{gettext(report.status)}"
        + (f"　{gettext('提交时间')}：{clock.local_text(report.submitted_on, seconds=False)}"
           if report.submitted_on else f"　（{gettext('数据为实时数据，提交时固定')}）"))
    state.alignment = WD_ALIGN_PARAGRAPH.CENTER

    # The headings are the print page's msgids, numbers and all (一、 reads 1. in English).
    for label, key in ((N_("一、工作总结"), "summary"), (N_("二、存在问题"), "problems"),
                       (N_("三、下步打算"), "plans")):
        document.add_heading(gettext(label), 1)
        for line in (getattr(report, key) or "").splitlines() or [""]:
            document.add_paragraph(line)  # text, never markup: python-docx escapes it

    document.add_heading(gettext("四、工作数据"), 1)
    for part in tables(figures):
        document.add_heading(part["title"], 2)
        for table in part["tables"]:
            document.add_paragraph(table["title"]).runs[0].bold = True
            if not table["rows"]:
                document.add_paragraph(gettext("（本月无数据）"))
                continue
            grid = document.add_table(rows=1, cols=len(table["labels"]))
            grid.style = "Table Grid"
            for i, label in enumerate(table["labels"]):
                grid.rows[0].cells[i].text = label
            for row in table["rows"]:
                cells = grid.add_row().cells
                for i, value in enumerate(row):
                    cells[i].text = value
    charts = _charts(figures)
    if charts:
        document.add_heading(gettext("五、图表"), 1)
        for chart_title, png in charts:
            document.add_picture(io.BytesIO(png), width=Cm(15))
            document.add_paragraph(chart_title).alignment = WD_ALIGN_PARAGRAPH.CENTER

    document.add_paragraph()
    signature = document.add_paragraph(
        f"{gettext('报送单位（盖章）')}：{node.name}　　{gettext('负责人签字')}：__________　　"
        f"{gettext('日期')}：__________")
    signature.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def soffice() -> str | None:
    return shutil.which(current_app.config.get("SOFFICE_BINARY") or "soffice")


def pdf_bytes(docx: bytes) -> bytes:
    """The .docx converted by LibreOffice (a profile of its own per call: two conversions at
    once, or one beside a user's LibreOffice, would otherwise refuse each other)."""
    binary = soffice()
    if binary is None:
        raise DomainError("服务器未安装 LibreOffice，无法生成 PDF：请使用“打印”页面另存为 PDF")
    with tempfile.TemporaryDirectory(prefix="gongjian-report-") as folder:
        source = os.path.join(folder, "report.docx")
        with open(source, "wb") as handle:
            handle.write(docx)
        try:
            subprocess.run([binary, f"-env:UserInstallation=file://{folder}/profile", "--headless",
                            "--convert-to", "pdf", "--outdir", folder, source],
                           capture_output=True, timeout=180, check=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            raise DomainError("PDF 生成失败（LibreOffice 转换出错），请稍后重试或使用“打印”页面") from None
        target = os.path.join(folder, "report.pdf")
        if not os.path.exists(target):
            raise DomainError("PDF 生成失败（LibreOffice 未输出文件），请使用“打印”页面")
        with open(target, "rb") as handle:
            return handle.read()


def document_name(report: WorkReport, fmt: str) -> str:
    # ASCII: the job's download names its file in a plain Content-Disposition.
    return f"work-report-{report.org_id}-{report.month}.{fmt}"
