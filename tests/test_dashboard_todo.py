"""The home page after login is the user's to-do list (我的待办): per role, counts of what waits
for the user, each linking to the list where it is handled — and that list shows exactly the
counted rows."""
import html
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import select, text

from app import clock
from tests import need_limits
from tests.conftest import DEMO_USERS
from tests.test_dashboard_drilldown import listed, listed_ids

pytestmark = pytest.mark.db

ENTRY = re.compile(r'<li class="list-group-item gj-todo-entry[^"]*">(.*?)</li>', re.DOTALL)
LINKED = re.compile(r'\s*<a href="([^"]+)" data-count="(\d+)">([^<]+)</a>\s*'
                    r'<span class="badge[^"]*">(\d+)</span>\s*')
RECORD_COUNT = re.compile(r"<strong>记录数目:</strong>\s*(\d+)")


def entries(browser) -> dict[str, tuple[str, int]]:
    page = browser.get("/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "我的待办" in body and "您的角色" in body
    found = {}
    for item in ENTRY.findall(body):
        linked = LINKED.fullmatch(item)
        assert linked, f"a to-do item without its list: {item.strip()}"
        url, count, label, badge = linked.groups()
        assert count == badge
        found[label.strip()] = (html.unescape(url), int(count))
    return found


def record_count(browser, url) -> int:
    """The record count the list page prints above its rows."""
    page = browser.get(url)
    assert page.status_code == 200, url
    found = RECORD_COUNT.search(page.get_data(as_text=True))
    return int(found.group(1)) if found else 0  # an empty list prints none


def view_of_url(app, url):
    resource = urlsplit(url).path.strip("/").split("/")[0]
    return next(v for v in app.appbuilder.baseviews
                if getattr(v, "route_base", "") == f"/{resource}")


def link(ctx, username, column):
    return ctx.execute(text(f"SELECT {column} FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_to_do_count_is_the_record_count_of_its_list(app, as_user, username):
    """Each item's number is what its link opens: the list's record count and the rows it
    shows over all its pages. The clock stands still meanwhile: a need that falls due between
    the home page and its list (its step's hour runs out) would count on one and not the other."""
    browser = as_user(username)
    with time_machine.travel(datetime.now(UTC), tick=False):
        todo = entries(browser)
        if username != "shenji":
            assert todo, f"{username} should have a to-do list"
        wrong = [(label, count, record_count(browser, url), listed(browser, app, url), url)
                 for label, (url, count) in todo.items()
                 if not count == record_count(browser, url) == listed(browser, app, url)]
    assert not wrong, wrong


@pytest.mark.parametrize("username", DEMO_USERS)
def test_a_to_do_label_naming_states_lists_only_rows_in_them(app, as_user, ctx, username):
    """"办理中的议定事项" listed 待办 ones too: a label that names states of its rows' workflow
    (待受理, 办理中, 已报到, …) opens a list of rows in those states only."""
    from app.models.base import choices_of

    browser = as_user(username)
    wrong = []
    for label, (url, _count) in entries(browser).items():
        model = view_of_url(app, url).datamodel.obj
        named = [state for state in choices_of(model).get("status", {}) if state in label]
        ids = listed_ids(browser, app, url)
        if not named or not ids:
            continue
        states = {row[0] for row in ctx.execute(select(model.status).where(model.id.in_(ids)))}
        if not states <= set(named):
            wrong.append((label, named, sorted(states)))
    assert not wrong, wrong


def test_a_community_admin_is_asked_to_accept_dispatch_and_confirm(as_user, ctx):
    path = ctx.execute(text("SELECT o.path FROM ab_user u JOIN organization o ON o.id = u.org_id "
                            "WHERE u.username = 'shequ01'")).scalar()
    todo = entries(as_user("shequ01"))

    def count(sql):
        return ctx.execute(text(sql + " AND deleted_on IS NULL AND community_id IN "
                                "(SELECT id FROM organization WHERE path LIKE :p)"),
                           {"p": path + "%", "now": clock.utcnow()}).scalar()

    assert todo["待受理的需求（平台接单）"][1] == count("SELECT count(*) FROM need WHERE status = '待受理'")
    assert todo["待派单的需求（会商派单）"][1] == count("SELECT count(*) FROM need WHERE status = '已受理'")
    assert todo["待确认的党员报到"][1] == count(
        "SELECT count(*) FROM member_registration WHERE status = '待确认'")
    now = clock.utcnow()
    needs = ctx.execute(text(f"SELECT {need_limits.COLUMNS} FROM need t WHERE t.deleted_on IS NULL "
                             "AND t.community_id IN (SELECT id FROM organization WHERE path LIKE :p)"),
                        {"p": path + "%"}).mappings()
    assert todo["逾期未办结的需求"][1] == sum(need_limits.is_overdue(n, now) for n in needs)
    for label in ("待审核的资源清单", "待审核的微心愿", "待确认的单位报到", "待认证的服务记录",
                  "逾期未办结的议定事项"):
        assert label in todo, label


def test_a_liaison_is_asked_to_take_its_units_needs(as_user, ctx):
    unit = link(ctx, "danwei01", "unit_id")
    todo = entries(as_user("danwei01"))
    assert todo["待接单（单位接单）"][1] == ctx.execute(text(
        "SELECT count(*) FROM need WHERE assigned_unit_id = :u AND status = '已派单' "
        "AND deleted_on IS NULL"), {"u": unit}).scalar()
    assert todo["资源清单（草稿或已驳回）"][1] == ctx.execute(text(
        "SELECT count(*) FROM resource WHERE unit_id = :u AND status IN ('草稿', '已驳回') "
        "AND deleted_on IS NULL"), {"u": unit}).scalar()
    for label in ("办理中，待办结", "服务项目（草稿或已驳回）", "即将到期的共驻共建协议", "30 天内计划召开的会议"):
        assert label in todo, label
    page = as_user("danwei01").get("/").get_data(as_text=True)
    assert re.search(r'href="/meeting/show/\d+"', page), "the next meetings are listed"


def test_a_member_sees_its_posts_wishes_needs_and_points(as_user, ctx):
    member = link(ctx, "dangyuan01", "member_id")
    todo = entries(as_user("dangyuan01"))
    assert todo["派给我的需求（待接单）"][1] == ctx.execute(text(
        "SELECT count(*) FROM need n JOIN need_member m ON m.need_id = n.id WHERE m.member_id = :m "
        "AND n.status = '已派单' AND n.deleted_on IS NULL"), {"m": member}).scalar() > 0
    assert todo["我认领的服务岗位"][1] == ctx.execute(text(
        "SELECT count(*) FROM post_claim WHERE member_id = :m AND status = '已认领' "
        "AND deleted_on IS NULL"), {"m": member}).scalar()
    points = ctx.execute(text("SELECT coalesce(sum(delta), 0) FROM point_entry WHERE member_id = :m "
                              "AND subject_type = 'member' AND deleted_on IS NULL"), {"m": member}).scalar()
    assert any(label.startswith(f"累计积分 {float(points):g} 分") for label in todo)
    assert "可认领的微心愿" in todo and "我认领、待实现的微心愿" in todo


def test_an_auditor_sees_recent_exports_and_changes(as_user):
    browser = as_user("shenji")
    assert browser.get("/dashboard/figure/need_funnel.csv").status_code == 200
    page = browser.get("/").get_data(as_text=True)
    assert "最近的导出" in page and "最近的数据变更" in page
    exports = page.split("最近的导出", 1)[1].split("最近的数据变更", 1)[0]
    assert "审计员 导出 数据看板" in exports


def test_before_login_the_home_page_points_to_login_and_the_notice_board(app):
    page = app.test_client().get("/").get_data(as_text=True)
    assert "我的待办" not in page
    assert 'href="/login/"' in page and 'href="/public/"' in page
