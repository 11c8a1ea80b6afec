"""The grid secretary (网格管理员, DOMAIN.md §4): the demo user `wangge01` reads exactly its grid's
members, needs, wishes, registrations and service records — each set computed here in plain SQL
from the rows' grid (a member's 所在网格, a need's or wish's grid) —, files needs and wishes for
its grid (source 网格员) and not for another, and leaves accepting to the community. A
CommunityAdmin whose node is a grid sees that grid's rows the same way (the grid anchor of the
scope declarations). Members per grid, 红色网格员 and 党员中心户 are filters of the list and API."""
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, tables_kept_by
from tests.test_scope import api_ids, user_link

pytestmark = pytest.mark.db

IN_GRID = "(SELECT id FROM organization WHERE path LIKE :p)"
# Where each resource lies in a grid, in plain SQL (the member's 所在网格 for the rows of a member).
GRID_SQL = {
    "member": f"group_id IN {IN_GRID}",
    "need": f"grid_id IN {IN_GRID}",
    "micro_wish": f"grid_id IN {IN_GRID}",
    "member_registration": f"member_id IN (SELECT id FROM member WHERE group_id IN {IN_GRID})",
    "service_record": f"member_id IN (SELECT id FROM member WHERE group_id IN {IN_GRID})",
}


def id_number(serial: int) -> str:
    """A valid 身份证号 (GB 11643 check digit) that no seeded member has."""
    body = f"11010519800101{serial:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def in_grid(ctx, resource, path):
    return {row[0] for row in ctx.execute(text(
        f"SELECT id FROM {resource} WHERE deleted_on IS NULL AND {GRID_SQL[resource]}"),
        {"p": path + "%"})}


def community_rows(ctx, resource, username="shequ01"):
    path = user_link(ctx, username).path
    column = {"member_registration": "community_id", "member": "community_id",
              "need": "community_id", "micro_wish": "community_id"}.get(resource)
    where = (f"{column} IN {IN_GRID}" if column else
             f"member_id IN (SELECT id FROM member WHERE community_id IN {IN_GRID})")
    return {row[0] for row in ctx.execute(text(
        f"SELECT id FROM {resource} WHERE deleted_on IS NULL AND {where}"), {"p": path + "%"})}


@pytest.fixture(scope="module")
def outside_the_grid(app):
    """Rows of shequ01's community that lie outside wangge01's grid: a member living in the
    community with no grid, a second grid with a member, a need and a wish in it."""
    from datetime import date

    from app.extensions import db
    from app.models.cobuild import MemberRegistration, ServiceRecord
    from app.models.lists import MicroWish, Need
    from app.models.org import Dictionary, Member, Organization

    with app.app_context():
        session = db.session
        shequ = session.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
        community = session.get(Organization, shequ)
        other = Organization(parent=community, type="grid", code=f"H20G{uuid.uuid4().hex[:6]}",
                             name="第9网格党支部（测试）", grid_kind="城市")
        session.add(other)
        session.flush()
        category = session.execute(text(
            "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
        homeless = Member(name="无网格党员", id_number=id_number(971), community=community)
        elsewhere = Member(name="九网格党员", id_number=id_number(972), community=community,
                           group=other)
        need = Need(community=community, grid=other, category=session.get(Dictionary, category),
                    title="九网格的需求", requester_name="居民")
        wish = MicroWish(community=community, grid=other, resident_name="居民", content="九网格心愿")
        session.add_all([homeless, elsewhere, need, wish])
        session.flush()
        record = ServiceRecord(member=elsewhere, served_on=date(2026, 1, 5), hours=2)
        session.add_all([record, MemberRegistration(member=elsewhere, community=community,
                                                    registered_on=date(2026, 1, 5))])
        session.commit()
        made = {"grid": other.id, "members": {homeless.id, elsewhere.id}, "need": need.id,
                "wish": wish.id, "record": record.id}
        db.session.remove()
    return made


@pytest.mark.parametrize("resource", list(GRID_SQL))
def test_wangge01_sees_exactly_its_grids_rows(ctx, api, outside_the_grid, resource):
    path = user_link(ctx, "wangge01").path
    want = in_grid(ctx, resource, path)
    found, count = api_ids(api, "wangge01", resource)
    assert found == want and count == len(want)
    # the community holds more than the grid: the grid's rows are a part of it, not all of it
    assert want < community_rows(ctx, resource)
    if resource in ("member", "need"):
        assert want, f"the demo grid should hold {resource}"


def test_rows_outside_the_grid_are_not_found(ctx, as_user, outside_the_grid):
    browser = as_user("wangge01")
    for resource, pk in (("need", outside_the_grid["need"]), ("micro_wish", outside_the_grid["wish"]),
                         ("service_record", outside_the_grid["record"]),
                         *(("member", m) for m in outside_the_grid["members"])):
        assert browser.get(f"/{resource}/show/{pk}").status_code == 404, resource
    own = min(in_grid(ctx, "need", user_link(ctx, "wangge01").path))
    assert browser.get(f"/need/show/{own}").status_code == 200


@pytest.fixture(scope="module")
def grid_community_admin(app, outside_the_grid):
    """A CommunityAdmin linked to wangge01's grid node (as issue 20 found one: it saw nothing)."""
    from app.extensions import appbuilder, db

    with app.app_context():
        sm = appbuilder.sm
        grid = db.session.execute(text("SELECT org_id FROM ab_user WHERE username='wangge01'")).scalar()
        user = sm.add_user("h20_gridadmin", "网格", "社区管理员", "h20_gridadmin@gongjian.invalid",
                           sm.find_role("CommunityAdmin"), password=TEST_PASSWORD)
        user.org_id = grid
        db.session.commit()
        user_id = user.id
        db.session.remove()
    yield "h20_gridadmin"
    with app.app_context():
        db.session.execute(text("DELETE FROM ab_user_role WHERE user_id = :u"), {"u": user_id})
        db.session.execute(text("DELETE FROM audit_log WHERE user_id = :u"), {"u": user_id})
        db.session.execute(text("DELETE FROM user_session WHERE user_id = :u"), {"u": user_id})
        db.session.execute(text("DELETE FROM refresh_token WHERE user_id = :u"), {"u": user_id})
        db.session.execute(text("DELETE FROM ab_user WHERE id = :u"), {"u": user_id})
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("resource", list(GRID_SQL))
def test_a_community_admin_at_a_grid_node_sees_that_grids_rows(ctx, api, grid_community_admin,
                                                              resource):
    path = user_link(ctx, grid_community_admin).path
    want = in_grid(ctx, resource, path)
    found, count = api_ids(api, grid_community_admin, resource)
    assert found == want and count == len(want)
    if resource in ("member", "need"):
        assert want


def test_wangge01_files_a_need_for_its_grid_not_another(ctx, api, outside_the_grid):
    community, grid = user_link(ctx, "shequ01").org_id, user_link(ctx, "wangge01").org_id
    category = ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    client, headers = api("wangge01")
    body = {"community": community, "category": category, "title": "网格员上报：楼道灯坏",
            "requester_name": "王阿姨"}
    refused = client.post("/api/v1/need/", headers=headers,
                          json={**body, "grid": outside_the_grid["grid"]})
    assert refused.status_code in (404, 422), refused.json
    response = client.post("/api/v1/need/", headers=headers, json={**body, "grid": grid})
    assert response.status_code == 201, response.json
    row = ctx.execute(text("SELECT source, status, grid_id FROM need WHERE id = :i"),
                      {"i": response.json["id"]}).one()
    assert (row.source, row.status, row.grid_id) == ("网格员", "待受理", grid)
    # the community accepts it, not the grid
    accept = client.post(f"/api/v1/need/{response.json['id']}/transition/accept", json={},
                         headers=headers)
    assert accept.status_code == 403
    assert ctx.execute(text("SELECT status FROM need WHERE id = :i"),
                       {"i": response.json["id"]}).scalar() == "待受理"


def test_the_need_forms_offer_the_grids_community_and_its_grid_only(ctx, as_user,
                                                                   outside_the_grid):
    browser = as_user("wangge01")
    community, grid = user_link(ctx, "shequ01").org_id, user_link(ctx, "wangge01").org_id
    offered = {r["id"] for r in browser.get("/need/choices/community").json["results"]}
    assert offered == {community}
    grids = {r["id"] for r in browser.get("/need/choices/grid").json["results"]}
    assert grid in grids and outside_the_grid["grid"] not in grids


def test_wangge01_files_a_wish_for_its_grid(ctx, api):
    community, grid = user_link(ctx, "shequ01").org_id, user_link(ctx, "wangge01").org_id
    client, headers = api("wangge01")
    response = client.post("/api/v1/micro_wish/", headers=headers, json={
        "community": community, "grid": grid, "resident_name": "李奶奶", "content": "想要一副老花镜"})
    assert response.status_code == 201, response.json
    assert ctx.execute(text("SELECT status, grid_id FROM micro_wish WHERE id = :i"),
                       {"i": response.json["id"]}).one() == ("待审核", grid)


def test_members_per_grid_red_grid_workers_and_household_centers_are_filters(ctx, as_user, api):
    from tests.security.support import listed_on_pages

    path = user_link(ctx, "wangge01").path
    grid = user_link(ctx, "wangge01").org_id
    group = ctx.execute(text(f"SELECT group_id FROM member WHERE deleted_on IS NULL AND "
                             f"group_id IN {IN_GRID} ORDER BY id"), {"p": path + "%"}).scalar()

    def members(where, **params):
        return {row[0] for row in ctx.execute(text(
            f"SELECT id FROM member WHERE deleted_on IS NULL AND {where}"), params)}

    browser = as_user("shequ01")
    in_this_grid = members(f"group_id IN {IN_GRID}", p=path + "%")
    assert listed_on_pages(browser, f"/member/list/?_flt_0_within={grid}", "member",
                           "MemberView") == in_this_grid
    assert listed_on_pages(browser, f"/member/list/?_flt_0_group={group}", "member",
                           "MemberView") == members("group_id = :g", g=group)
    community = user_link(ctx, "shequ01").path
    mine = f"community_id IN {IN_GRID}"
    for flag in ("is_red_grid_worker", "is_household_center"):
        want = members(f"{mine} AND {flag} = :t", p=community + "%", t=True)
        assert listed_on_pages(browser, f"/member/list/?_flt_0_{flag}=y", "member",
                               "MemberView") == want, flag
        client, headers = api("shequ01")
        response = client.get(f"/api/v1/member/?q=(filters:!((col:{flag},opr:eq,value:!t)),"
                              "page_size:100)", headers=headers)
        assert response.status_code == 200, response.json
        assert {row["id"] for row in response.json["result"]} == want, flag
