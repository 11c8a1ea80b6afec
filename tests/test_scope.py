"""Data scope (DOMAIN.md §4) for the organisation tree, units and members: what each demo user
sees in lists and through the API equals a set computed here with plain SQL, and what it may
not see behaves as if it did not exist."""

import pytest
from sqlalchemy import text

from tests.conftest import DEMO_USERS

pytestmark = pytest.mark.db

VIEWS = {"organization": "OrganizationView", "unit": "UnitView", "member": "MemberView"}


def ids(session, sql, **params):
    return {row[0] for row in session.execute(text(sql), params)}


def user_link(session, username):
    return session.execute(text(
        "SELECT u.org_id, u.unit_id, u.member_id, o.path FROM ab_user u "
        "LEFT JOIN organization o ON o.id = u.org_id WHERE u.username = :u"), {"u": username}).one()


def expected(session, username, resource):
    """The rows `username` may read, written out by hand for each role (not via app code)."""
    alive = f"SELECT id FROM {resource} WHERE deleted_on IS NULL"
    if resource in ("organization", "unit") or username in ("admin", "zuzhibu", "shenji"):
        return ids(session, alive)
    _org_id, unit_id, member_id, path = user_link(session, username)
    if username in ("jiedao01", "shequ01"):
        return ids(session, alive + " AND community_id IN "
                   "(SELECT id FROM organization WHERE path LIKE :p)", p=path + "%")
    if username == "wangge01":  # a grid's members: those whose 所在网格 lies in its subtree
        return ids(session, alive + " AND group_id IN "
                   "(SELECT id FROM organization WHERE path LIKE :p)", p=path + "%")
    if username.startswith("danwei"):
        return ids(session, alive + " AND work_unit_id = :u", u=unit_id)
    return ids(session, alive + " AND id = :m", m=member_id)


def listed_ids(browser, resource):
    from tests.security.support import listed_on_pages

    return listed_on_pages(browser, f"/{resource}/list/", resource, VIEWS[resource])


def api_ids(api, username, resource):
    client, headers = api(username)
    response = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:0)", headers=headers)
    assert response.status_code == 200
    found = {row["id"] for row in response.json["result"]}
    page = 1
    while len(found) < response.json["count"]:
        more = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:{page})", headers=headers)
        found |= {row["id"] for row in more.json["result"]}
        page += 1
    return found, response.json["count"]


@pytest.mark.parametrize("username", DEMO_USERS)
@pytest.mark.parametrize("resource", ["organization", "unit", "member"])
def test_each_user_sees_exactly_its_rows(app, ctx, as_user, api, username, resource):
    want = expected(ctx, username, resource)
    assert want, "the test data set should give every user something to see"
    assert listed_ids(as_user(username), resource) == want
    found, count = api_ids(api, username, resource)
    assert found == want and count == len(want)


def test_scopes_differ_where_the_domain_says(ctx):
    street = expected(ctx, "jiedao01", "member")
    community = expected(ctx, "shequ01", "member")
    everyone = expected(ctx, "admin", "member")
    assert community < street < everyone
    assert expected(ctx, "danwei01", "member").isdisjoint(expected(ctx, "danwei02", "member"))
    assert len(expected(ctx, "dangyuan01", "member")) == 1


@pytest.fixture
def other_units_member(ctx):
    """A member of danwei02's unit that danwei01 has no reason to see."""
    unit1 = user_link(ctx, "danwei01").unit_id
    unit2 = user_link(ctx, "danwei02").unit_id
    row = ctx.execute(text("SELECT id, name, work_unit_id, changed_on FROM member "
                           "WHERE work_unit_id = :u2 AND deleted_on IS NULL ORDER BY id"),
                      {"u2": unit2}).first()
    assert row and row.work_unit_id != unit1
    return row


def member_row(ctx, pk):
    ctx.rollback()
    return ctx.execute(text("SELECT name, work_unit_id, deleted_on FROM member WHERE id = :i"),
                       {"i": pk}).one()


def test_out_of_scope_member_is_not_found_anywhere(app, ctx, as_user, api, other_units_member):
    pk = other_units_member.id
    before = member_row(ctx, pk)
    browser = as_user("danwei01")
    assert browser.get(f"/member/show/{pk}").status_code == 404
    assert browser.get(f"/member/edit/{pk}").status_code == 404
    assert browser.post(f"/member/edit/{pk}", {"name": "改名"}, form_url="/member/add").status_code == 404
    assert browser.post(f"/member/delete/{pk}", form_url="/member/list/").status_code == 404
    client, headers = api("danwei01")
    assert client.get(f"/api/v1/member/{pk}", headers=headers).status_code == 404
    assert client.put(f"/api/v1/member/{pk}", json={"name": "改名"}, headers=headers).status_code == 404
    assert client.delete(f"/api/v1/member/{pk}", headers=headers).status_code == 404
    assert member_row(ctx, pk) == before


def test_bulk_action_with_an_out_of_scope_id_changes_nothing(ctx, as_user, other_units_member):
    own = min(expected(ctx, "danwei01", "member"))
    browser = as_user("danwei01")
    response = browser.post("/member/action_post", {
        "action": "muldelete", "rowid": [str(own), str(other_units_member.id)]},
        form_url="/member/list/")
    assert response.status_code == 404
    assert member_row(ctx, own).deleted_on is None
    assert member_row(ctx, other_units_member.id).deleted_on is None


def test_liaison_cannot_place_a_member_in_another_unit(app, ctx, as_user, api):
    unit1 = user_link(ctx, "danwei01").unit_id
    unit2 = user_link(ctx, "danwei02").unit_id
    own = min(expected(ctx, "danwei01", "member"))
    community = ctx.execute(text("SELECT community_id FROM member WHERE id=:i"), {"i": own}).scalar()
    count = ctx.execute(text("SELECT count(*) FROM member")).scalar()
    browser = as_user("danwei01")
    # create one for danwei02's unit: through the form and through the API
    browser.post("/member/add", {
        "name": "越权新增", "id_number": "11010519491231002X", "community": str(community),
        "work_unit": str(unit2), "category": "在职", "status": "正常"})
    client, headers = api("danwei01")
    response = client.post("/api/v1/member/", headers=headers, json={
        "name": "越权新增", "id_number": "11010519491231002X", "community": community,
        "work_unit": unit2, "category": "在职", "status": "正常"})
    assert response.status_code in (404, 422)
    ctx.rollback()
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == count
    # move an own member there
    browser.post(f"/member/edit/{own}", {
        "name": "移走", "id_number": "", "community": str(community), "work_unit": str(unit2),
        "category": "在职", "status": "正常"})
    response = client.put(f"/api/v1/member/{own}", headers=headers, json={"work_unit": unit2})
    assert response.status_code in (404, 422)
    assert member_row(ctx, own).work_unit_id == unit1


def choice_ids(browser, url):
    response = browser.get(url)
    assert response.status_code == 200
    return {row["id"] for row in response.json["results"]}


def test_dropdowns_offer_only_choices_in_scope(ctx, as_user):
    unit1 = user_link(ctx, "danwei01").unit_id
    liaison = as_user("danwei01")
    assert choice_ids(liaison, "/member/choices/work_unit") == {unit1}
    # a liaison's members live anywhere: every community is offered, and only communities
    communities = ids(ctx, "SELECT id FROM organization WHERE type='community' AND deleted_on IS NULL")
    offered = set()
    page = 1
    while True:
        response = liaison.get(f"/member/choices/community?page={page}").json
        offered |= {row["id"] for row in response["results"]}
        if not response["pagination"]["more"]:
            break
        page += 1
    assert offered == communities
    # a community admin places units only in its own community
    _, _, _, path = user_link(ctx, "shequ01")
    own = ids(ctx, "SELECT id FROM organization WHERE type='community' AND path LIKE :p", p=path + "%")
    assert choice_ids(as_user("shequ01"), "/unit/choices/community") == own


def test_choices_search_by_name(ctx, as_user):
    name = ctx.execute(text("SELECT name FROM organization WHERE type='community' ORDER BY id")).scalar()
    found = as_user("zuzhibu").get(f"/member/choices/community?q={name}").json["results"]
    assert [row["text"] for row in found] == [name]


def test_api_info_offers_the_same_choices_as_the_form(ctx, api):
    unit1 = user_link(ctx, "danwei01").unit_id
    client, headers = api("danwei01")
    info = client.get("/api/v1/member/_info?q=(keys:!(add_columns),add_columns:"
                      "(community:(page_size:100),work_unit:(page_size:100)))", headers=headers)
    assert info.status_code == 200
    fields = {f["name"]: f for f in info.json["add_columns"]}
    assert {v["id"] for v in fields["work_unit"]["values"]} == {unit1}
    assert fields["work_unit"]["count"] == 1
    communities = ids(ctx, "SELECT id FROM organization WHERE type='community' AND deleted_on IS NULL")
    assert fields["community"]["count"] == len(communities)
    assert {v["id"] for v in fields["community"]["values"]} <= communities


def test_a_form_refuses_an_id_it_would_not_offer(ctx, as_user):
    """An id outside the choices (here: a grid as home community) is refused, not saved."""
    grid = ctx.execute(text("SELECT id FROM organization WHERE type='grid' ORDER BY id")).scalar()
    count = ctx.execute(text("SELECT count(*) FROM member")).scalar()
    response = as_user("zuzhibu").post("/member/add", {
        "name": "网格居民", "id_number": "11010519491231002X", "community": str(grid),
        "category": "在职", "status": "正常"})
    assert "不存在或超出您的数据范围" in response.get_data(as_text=True)
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == count


def test_a_listed_row_shows_the_related_record_it_points_at(app):
    """A list's related records are loaded as a relationship load reads them (`load_by_id`,
    app/views/interface.py): one outside the reader's own scope is shown — the row pointing at
    it is in scope — and a deleted one is not."""
    from sqlalchemy import func, select

    from app import clock
    from app.extensions import db
    from app.models.lists import Need
    from app.models.org import Member, Organization
    from app.security.models import UserAccount
    from app.security.scope import SYSTEM, acting_as, principal_for
    from app.views.interface import load_by_id

    with app.test_request_context("/"), acting_as(SYSTEM):
        reader = principal_for(db.session.execute(
            select(UserAccount).where(UserAccount.username == "shequ01")).scalar_one())
        under = Organization.path.like(reader.org_paths[0] + "%")
        mine = db.session.execute(
            select(Need).join(Organization, Organization.id == Need.community_id).where(under)
            .order_by(Need.id).limit(2)).scalars().all()
        away, gone = db.session.execute(
            select(Member).join(Organization, Organization.id == Member.community_id)
            .where(~under).order_by(Member.id).limit(2)).scalars().all()
        assert len(mine) == 2
        away_id = away.id
        try:
            mine[0].submitted_by_member_id, mine[1].submitted_by_member_id = away.id, gone.id
            gone.deleted_on = clock.utcnow()
            db.session.flush()
            db.session.expunge(away)
            db.session.expunge(gone)
            for need in mine:
                db.session.expire(need, ["submitted_by_member"])
            with acting_as(reader):
                # A member of another community: out of shequ01's scope when read by itself.
                assert db.session.execute(select(func.count(Member.id))
                                          .where(Member.id == away_id)).scalar() == 0
                load_by_id(db.session, Need, mine, ("submitted_by_member",))
                assert mine[0].submitted_by_member.id == away_id
                assert mine[1].submitted_by_member is None
        finally:
            db.session.rollback()
