"""The panel reads like a product (issue 27): every demo role walks every menu entry in Chinese
and in English (tests/crawl.py), its menu is cut to its role by the one menu table, values read
as words by the one formatter, and errors are the panel's own pages."""
import re
from datetime import date, datetime

import pytest

from app.security.roles import RIGHTS
from tests.conftest import login
from tests.crawl import ROLE_USERS, menu_links, visible_text, walk_as


def _usable(app, role):
    """Whether `role` may make a list's bulk action (FAB's muldelete: the delete right; a
    workflow's move: the roles its transition table names)."""
    from app.views.entity import view_of

    def usable(list_url, name):
        resource = list_url.strip("/").split("/")[0]
        if role == "Admin":
            return True
        if name == "muldelete":
            return "delete" in RIGHTS.get(resource, {}).get(role, set())
        if name.startswith("bulk_"):
            with app.app_context():
                move = view_of(resource).workflow.by_name[name.removeprefix("bulk_")]
            return role in move.roles
        return True
    return usable


@pytest.mark.parametrize("role", list(ROLE_USERS))
def test_every_role_walks_its_menu_in_chinese_and_english(app, role):
    for zh in (True, False):
        walk = walk_as(login(app, ROLE_USERS[role]), zh, _usable(app, role))
        assert walk.pages > 5
        assert not walk.problems, "\n".join(walk.problems)


def _menu(browser):
    """The menu bar as (group or link label, [entry labels])."""
    page = browser.get("/").get_data(as_text=True)
    bar = re.search(r'<ul class="nav navbar-nav">(.*?)</ul>\s*<ul class="nav navbar-nav navbar-right">',
                    page, re.DOTALL).group(1)
    menu = []
    for item in re.findall(r"<li class=\"dropdown\">.*?</ul>\s*</li>|<li><a [^>]*>.*?</a></li>",
                           bar, re.DOTALL):
        texts = [re.sub(r"<[^>]+>", "", t).strip()
                 for t in re.findall(r"<a [^>]*>(.*?)</a>", item, re.DOTALL)]
        menu.append((texts[0].strip(), texts[1:]))
    return menu


def test_a_liaison_sees_its_units_work(as_user):
    assert _menu(as_user("danwei01")) == [
        ("我的待办", []),
        ("本单位", ["单位信息", "党员", "单位报到", "党员报到"]),
        ("三单", ["资源清单", "服务项目", "派给本单位的需求", "微心愿"]),
        ("共建", ["协议", "服务岗位", "服务记录", "积分", "年度考核"]),
        ("联席会议", ["会议", "议定事项"]),
        ("督查考核", ["工作要点", "整改任务", "季度督查"]),
    ]


def test_a_member_sees_its_own_service(as_user):
    browser = as_user("dangyuan01")
    assert _menu(browser) == [
        ("我的待办", []),
        ("我的服务", ["服务岗位", "服务记录", "积分", "微心愿"]),
        ("我的报到", []),
    ]
    # No 数据看板 entry, and the page itself is refused in the panel's layout, not Werkzeug's.
    assert "/dashboard/" not in menu_links(browser.get("/").get_data(as_text=True))
    refused = browser.get("/dashboard/")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert 'class="navbar' in page and "无权访问" in page and "回到首页" in page


@pytest.mark.parametrize("role", list(ROLE_USERS))
def test_no_group_of_one_entry(as_user, role):
    for label, entries in _menu(as_user(ROLE_USERS[role])):
        assert len(entries) != 1, f"{role}: {label} ▾ holds only {entries}"
        assert entries != [label]


def test_every_registered_page_is_placed_or_left_out_by_each_roles_table(app):
    """A page registered since the table was written (another issue's resource) would show
    under 更多: the table must say where it goes for each role with a menu of its own."""
    from app.menu import LEFT_OUT, MENUS, placed, registered_items

    with app.test_request_context():
        names = set(registered_items())
    for role in MENUS:
        readable = {name for name in names if name in RIGHTS and role in RIGHTS[name]}
        unplaced = readable - placed(role) - LEFT_OUT.get(role, frozenset())
        assert not unplaced, f"{role}: the menu table does not place {sorted(unplaced)}"
        assert not placed(role) & LEFT_OUT.get(role, frozenset()), role
        assert placed(role) <= names, f"{role}: placed but not registered"


def test_a_page_the_table_does_not_know_is_offered_under_more(app, monkeypatch):
    from app import menu

    monkeypatch.setitem(menu.LEFT_OUT, "UnitLiaison", menu.LEFT_OUT["UnitLiaison"] - {"dashboard"})
    labels = dict(_menu(login(app, "danwei01")))
    # Under 更多 (a group of one is the entry itself)
    assert labels.get("更多") == ["数据看板"] or labels.get("数据看板") == []


def test_bulk_moves_are_offered_only_to_who_may_make_them(as_user):
    liaison = as_user("danwei01").get("/need/list/").get_data(as_text=True)
    assert "bulk_accept_menu_item" not in liaison  # 平台接单: the community's
    assert "bulk_take_menu_item" in liaison  # 接单: the liaison's own
    community = as_user("shequ01").get("/need/list/").get_data(as_text=True)
    assert "bulk_accept_menu_item" in community
    refused = as_user("danwei01").post("/need/action_post", data={"action": "bulk_accept",
                                                                 "rowid": ["1"]},
                                       form_url="/need/list/")
    assert refused.status_code == 403


def test_error_pages_are_the_panels_in_both_languages_and_the_api_stays_json(as_user):
    browser = as_user("shequ01")
    missing = browser.get("/member/show/987654321")
    assert missing.status_code == 404
    page = missing.get_data(as_text=True)
    assert 'class="navbar' in page and "页面不存在" in page and "Traceback" not in page
    assert "javascript:" not in page and "返回上一页" not in page  # no page of the panel's to go back to
    came_from = browser.client.get("/member/show/987654321",
                                   headers={"Referer": "http://localhost/member/list/"})
    assert 'href="http://localhost/member/list/"' in came_from.get_data(as_text=True)
    elsewhere = browser.client.get("/member/show/987654321",
                                   headers={"Referer": "http://evil.example/"})
    assert "evil.example" not in elsewhere.get_data(as_text=True)
    browser.get("/lang/en")
    page = browser.get("/member/show/987654321").get_data(as_text=True)
    assert "Page not found" in page and 'class="navbar' in page
    api = browser.get("/api/v1/member/987654321")
    assert api.status_code == 404 and api.is_json


def test_values_read_as_words(app):
    from app.views.formatters import PageFormatters, shown

    with app.test_request_context():
        assert shown(True) == "是" and shown(False) == "否"
        assert shown(None) == "" and shown([]) == ""
        assert shown(date(2026, 12, 6)) == "2026-12-06"
        assert shown(datetime(2026, 12, 6, 2, 3, 4, 5678)) == "2026-12-06 10:03"  # UTC → +8
        assert PageFormatters({"flag": lambda v: None}).get("flag")(1) == ""
        # The audit log's values, as stored (JSON): the same words.
        from app.views.records import _plain

        assert _plain(True) == "是" and _plain(None) == "" and _plain([]) == ""
        assert _plain("2026-12-06T02:03:04.123456") == "2026-12-06 10:03"
        assert _plain("2026-12-06") == "2026-12-06"


def test_names_read_family_name_first_and_roles_by_their_labels(as_user):
    browser = as_user("admin")
    home = browser.get("/").get_data(as_text=True)
    assert "系统管理员" in home and "系统 管理员" not in home
    users = browser.get("/users/list/").get_data(as_text=True)
    assert "驻区单位联络员" in users and "<td>UnitLiaison</td>" not in users
    roles = browser.get("/roles/list/").get_data(as_text=True)
    assert "组织部管理员" in roles and "can read on" not in roles and "查看：" in roles
    # FAB's own pages and rights too, not their class names ("列表：UserView", "copyrole")
    assert "列表：用户管理" in roles and "复制角色：角色管理" in roles
    assert not re.search(r"：(UserView|RoleModelView|MenuApi|User|ViewMenu)\b", roles)
    said = visible_text(roles)
    assert "copyrole" not in said and "update_role_users" not in said
    form = browser.get("/users/add").get_data(as_text=True)
    assert "不建议删除用户，停用即可" in form and "just make it inactive" not in form


def _moves(page: str) -> set[str]:
    return {m for _, m in re.findall(r'"/(\w+)/transition/\d+/(\w+)"', page)}


def test_a_liaison_is_offered_no_move_of_the_community_nor_of_the_raters(app, ctx, as_user):
    """平台接单, 驳回, 会商派单, 回访评单, 重办 are the community's; 审核 and 公示 on 星级评定 the
    raters'. A liaison meets none of them — not as a bulk action, not as a button on any of
    its needs' pages, not on its unit's star rating awaiting review — where the raters do."""
    from sqlalchemy import text

    liaison, street = as_user("danwei01"), as_user("jiedao01")
    needs = liaison.get("/need/list/?psize_NeedView=100").get_data(as_text=True)
    for move in ("accept", "reject", "dispatch", "review", "reopen", "adopt_rating"):
        assert f"bulk_{move}_menu_item" not in needs, move
    shown = sorted(set(re.findall(r'href="/need/show/(\d+)', needs)))
    assert shown
    offered = set()
    for pk in shown:
        offered |= _moves(liaison.get(f"/need/show/{pk}").get_data(as_text=True))
    assert not offered & {"accept", "reject", "dispatch", "review", "reopen", "adopt_rating"}, offered

    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    rating = ctx.execute(text("SELECT id, status FROM star_rating WHERE unit_id = :u "
                              "AND subject_type = 'unit' ORDER BY id DESC"), {"u": unit}).first()
    assert rating is not None, "the demo rates danwei01's unit"
    with ctx.session() as session:
        session.execute(text("UPDATE star_rating SET status = '已计算' WHERE id = :i"),
                        {"i": rating.id})
        session.commit()
    try:
        page = f"/star_rating/show/{rating.id}"
        assert "review" in _moves(street.get(page).get_data(as_text=True))
        assert _moves(liaison.get(page).get_data(as_text=True)) == set()
        ratings = liaison.get("/star_rating/list/").get_data(as_text=True)
        assert "bulk_review_menu_item" not in ratings and "bulk_publish_menu_item" not in ratings
        assert "bulk_review_menu_item" in street.get("/star_rating/list/").get_data(as_text=True)
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE star_rating SET status = :s WHERE id = :i"),
                            {"s": rating.status, "i": rating.id})
            session.commit()


def test_an_unexpected_error_is_the_panels_500_page_and_json_on_the_api(app, as_user, monkeypatch):
    """An exception no handler expected: the panel's 500 page in its layout and language, no
    traceback and nothing of the exception's text; the API answers JSON."""
    browser = as_user("shequ01")
    adapter = app.url_map.bind("localhost")

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of the failure")

    for url in ("/member/list/", "/api/v1/member/"):
        monkeypatch.setitem(app.view_functions, adapter.match(url)[0], broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    for lang, title in (("zh", "系统出错了"), ("en", "Something went wrong")):
        browser.get(f"/lang/{lang}")
        failed = browser.get("/member/list/")
        page = failed.get_data(as_text=True)
        assert failed.status_code == 500
        assert 'class="navbar' in page and title in page, page[:500]
        assert "Traceback" not in page and "secret detail" not in page
    api = browser.get("/api/v1/member/")
    assert api.status_code == 500 and api.is_json
    assert "secret detail" not in api.get_data(as_text=True)
