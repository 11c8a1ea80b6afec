"""Forms that help (issue 28): a required choice with one possible value in the user's scope is
filled and shown as that value (a community admin's need is in its community; a member's
service record is its own — no 党员 box, on the desktop form and the phone page alike), while
the server still checks what is sent; required fields are marked; date boxes pick in Chinese.
And the small things: the greeting names the user's place, the favicon is ours and served
here, the public board leads back to the login and searches its communities by name."""
import re

import pytest
from sqlalchemy import text

from app import clock
from tests.conftest import tables_kept_by

pytestmark = pytest.mark.db

MARK = '<strong style="color: red">&#42;</strong>'


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def link(ctx, username):
    return ctx.execute(text("SELECT org_id, unit_id, member_id FROM ab_user WHERE username = :u"),
                       {"u": username}).one()


def field_cell(page: str, name: str) -> tuple[str, str]:
    """(label cell, field cell) of a form field on FAB's form table."""
    match = re.search(rf'<label for="{name}"[^>]*>(.*?)</label>\s*</td>\s*<td>(.*?)</td>',
                      page, re.DOTALL)
    assert match, f"no field {name}"
    return match.group(1), match.group(2)


def settled_value(cell: str) -> str | None:
    match = re.search(r'<input type="hidden" id="[^"]+" name="[^"]+" value="(\d+)">', cell)
    return match.group(1) if match else None


def test_a_community_admins_need_is_in_its_community(as_user, ctx):
    community = link(ctx, "shequ01").org_id
    name = ctx.execute(text("SELECT name FROM organization WHERE id = :i"),
                       {"i": community}).scalar()
    page = as_user("shequ01").get("/need/add").get_data(as_text=True)
    label, cell = field_cell(page, "community")
    assert settled_value(cell) == str(community) and name in cell
    assert "gj-ajax-select" not in cell and MARK in label
    # The district chooses among its communities: a box, empty.
    label, cell = field_cell(as_user("zuzhibu").get("/need/add").get_data(as_text=True),
                             "community")
    assert "gj-ajax-select" in cell and settled_value(cell) is None and MARK in label


def test_required_fields_are_marked_and_optional_ones_are_not(as_user):
    page = as_user("zuzhibu").get("/need/add").get_data(as_text=True)
    for required in ("source", "community", "category", "title", "urgency"):
        assert MARK in field_cell(page, required)[0], required
    for optional in ("grid", "requester_name", "content"):
        assert MARK not in field_cell(page, optional)[0], optional


def selected_value(cell: str) -> str | None:
    match = re.search(r'<option value="(\d+)" selected>', cell)
    return match.group(1) if match else None


def test_a_grid_secretarys_need_and_wish_start_in_its_grid(as_user, ctx):
    """wangge01's rows are its own through their grid only (the community lies above it): the
    grid is required for it and starts at its own grid, a box still (its building groups may
    be chosen); the community is settled. A community admin's grid stays optional and empty."""
    grid = link(ctx, "wangge01").org_id
    community = link(ctx, "shequ01").org_id
    browser = as_user("wangge01")
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind = 'need_category' "
                                "ORDER BY id")).scalar()
    for resource, fields in (
            ("need", {"source": "居民", "category": str(category), "title": "网格默认：井盖松动",
                      "urgency": "一般"}),
            ("micro_wish", {"resident_name": "网格默认", "content": "网格默认：想要一把轮椅"})):
        page = browser.get(f"/{resource}/add").get_data(as_text=True)
        label, cell = field_cell(page, "grid")
        assert MARK in label and "gj-ajax-select" in cell and selected_value(cell) == str(grid), resource
        assert settled_value(field_cell(page, "community")[1]) == str(community), resource
        # Sent as the page holds it: the row is filed in the grid.
        response = browser.post(f"/{resource}/add", {**fields, "community": str(community),
                                                     "grid": selected_value(cell)},
                                form_url=f"/{resource}/add")
        assert response.status_code == 302, re.findall(r'alert-danger">\s*([^<]+)',
                                                        response.get_data(as_text=True))
        column = "title" if resource == "need" else "content"
        assert ctx.execute(text(f"SELECT grid_id FROM {resource} WHERE {column} = :t"),
                           {"t": fields[column]}).scalar() == grid
    label, cell = field_cell(as_user("shequ01").get("/need/add").get_data(as_text=True), "grid")
    assert MARK not in label and selected_value(cell) is None


def test_a_members_own_service_record_has_no_member_box(as_user, ctx):
    member = link(ctx, "dangyuan01").member_id
    name = ctx.execute(text("SELECT name FROM member WHERE id = :i"), {"i": member}).scalar()
    page = as_user("dangyuan01").get("/service_record/add").get_data(as_text=True)
    label, cell = field_cell(page, "member")
    assert settled_value(cell) == str(member) and name in cell
    assert "<select" not in cell and MARK in label
    # A liaison logs its unit's members: it chooses.
    page = as_user("danwei01").get("/service_record/add").get_data(as_text=True)
    assert "gj-ajax-select" in field_cell(page, "member")[1]


def count_records(ctx, description):
    return ctx.execute(text("SELECT count(*) FROM service_record WHERE description = :d"),
                       {"d": description}).scalar()


def test_the_fixed_member_is_still_checked_on_the_server(as_user, ctx):
    own = link(ctx, "dangyuan01").member_id
    other = ctx.execute(text("SELECT id FROM member WHERE id <> :i AND deleted_on IS NULL "
                             "ORDER BY id"), {"i": own}).scalar()
    member = as_user("dangyuan01")
    body = {"served_on": str(clock.today()), "hours": "2", "description": "替别人登记的服务"}
    response = member.post("/service_record/add", {**body, "member": str(other)},
                           form_url="/service_record/add", follow_redirects=True)
    assert "超出您的数据范围" in response.get_data(as_text=True)
    assert count_records(ctx, body["description"]) == 0
    body["description"] = "本人登记的服务"
    response = member.post("/service_record/add", {**body, "member": str(own)},
                           form_url="/service_record/add", follow_redirects=True)
    assert response.status_code == 200
    assert count_records(ctx, body["description"]) == 1


def test_the_phone_page_logs_the_member_itself(as_user, ctx):
    member = link(ctx, "dangyuan01").member_id
    name = ctx.execute(text("SELECT name FROM member WHERE id = :i"), {"i": member}).scalar()
    page = as_user("dangyuan01").get("/m/service_record/add").get_data(as_text=True)
    assert f"{name}（本人）" in page and 'name="member"' not in page


def test_date_boxes_pick_in_chinese_offline(as_user, app):
    page = as_user("dangyuan01").get("/service_record/add").get_data(as_text=True)
    assert "appbuilder_date" in field_cell(page, "served_on")[1]  # FAB's own picker
    script = re.search(r'src="(/static/js/gongjian\.js[^"]*)"', page).group(1)
    assert re.search(r'src="/static/appbuilder/js/bootstrap-datepicker/[^"]+"', page)
    code = app.test_client().get(script).get_data(as_text=True)
    assert '"zh-CN"' in code and "星期一" in code
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)


# --- small things -------------------------------------------------------------------------------

# Where each demo user stands, read here by hand: its node, its unit, its home community.
NODE_OF = ("SELECT COALESCE(o.short_name, o.name) FROM ab_user u JOIN organization o "
           "ON o.id = u.org_id WHERE u.username = :u")
UNIT_OF = "SELECT n.name FROM ab_user u JOIN unit n ON n.id = u.unit_id WHERE u.username = :u"
HOME_OF = ("SELECT COALESCE(o.short_name, o.name) FROM ab_user u JOIN member m "
           "ON m.id = u.member_id JOIN organization o ON o.id = m.community_id "
           "WHERE u.username = :u")


@pytest.mark.parametrize("username, place", [("shequ01", NODE_OF), ("jiedao01", NODE_OF),
                                             ("danwei01", UNIT_OF), ("dangyuan01", HOME_OF)])
def test_the_greeting_names_the_users_place(as_user, ctx, username, place):
    user = ctx.execute(text("SELECT last_name, first_name FROM ab_user WHERE username = :u"),
                       {"u": username}).one()
    where = ctx.execute(text(place), {"u": username}).scalar()
    page = as_user(username).get("/").get_data(as_text=True)
    assert f"您好，{user.last_name or ''}{user.first_name or ''}（{where}）！" in page


def test_the_favicon_is_ours_and_served_here(as_user, app):
    client = app.test_client()
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).lstrip().startswith("<svg")
    link = re.compile(r'<link rel="icon" type="image/svg\+xml" href="/static/favicon\.svg[^"]*">')
    for page in (client.get("/login/"), client.get("/public/"),
                 as_user("shequ01").get("/"), as_user("dangyuan01").get("/m/")):
        assert link.search(page.get_data(as_text=True))


def board_communities(page: str) -> set[str]:
    return set(re.findall(r'<a href="/public/community/\d+">([^<]+)</a>', page))


def test_the_board_links_back_to_the_login(app):
    page = app.test_client().get("/public/").get_data(as_text=True)
    assert re.search(r'<a class="pb-login" href="/login/">', page)


def test_the_board_searches_its_communities_by_name(app, ctx):
    client = app.test_client()
    everything = board_communities(client.get("/public/").get_data(as_text=True))
    assert len(everything) > 1
    one = min(everything)
    term = one  # a community's own name: no street's
    found = board_communities(client.get("/public/", query_string={"q": term}).get_data(
        as_text=True))
    assert one in found and found == {c for c in everything if term in c}
    street, = ctx.execute(text(
        "SELECT s.name FROM organization s WHERE s.type = 'street' AND s.deleted_on IS NULL "
        "ORDER BY s.id")).first()
    under = {r[0] for r in ctx.execute(text(
        "SELECT c.name FROM organization c JOIN organization s ON s.id = c.parent_id "
        "WHERE s.name = :s AND c.type = 'community' AND c.active AND c.deleted_on IS NULL"),
        {"s": street}).all()}
    by_street = board_communities(client.get("/public/", query_string={"q": street}).get_data(
        as_text=True))
    assert under and under <= by_street
    nothing = client.get("/public/", query_string={"q": "不存在的社区名"}).get_data(as_text=True)
    assert not board_communities(nothing) and "没有名称含“不存在的社区名”的社区" in nothing
    # A term is text, never markup, and a long one is cut, not an error.
    odd = client.get("/public/", query_string={"q": "<b>x</b>" * 40})
    assert odd.status_code == 200 and "<b>x</b>" not in odd.get_data(as_text=True)
