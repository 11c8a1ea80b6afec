"""Data scope of co-building (DOMAIN.md §4): a liaison sees its unit's agreement and manages its
unit's registration and its members' records only; a member sees only its own; a community
admin its community. What each sees in lists and through the API equals a set written here in
plain SQL; what it may not see does not exist (404); what it may not write is refused."""

import pytest
from sqlalchemy import text

from app import clock
from tests.test_cobuild_rules import count, form_of, home_community, link, new_members

pytestmark = pytest.mark.db

VIEWS = {"agreement": "AgreementView", "unit_registration": "UnitRegistrationView",
         "member_registration": "MemberRegistrationView", "service_post": "ServicePostView",
         "post_claim": "PostClaimView", "service_record": "ServiceRecordView",
         "point_entry": "PointEntryView", "star_rating": "StarRatingView"}

MEMBER_OF = "SELECT community_id FROM member WHERE id = {0}"
UNIT_OF = "SELECT work_unit_id FROM member WHERE id = {0}"

# For each resource, the SQL placing a row: (communities, units, members) — DOMAIN.md §2.
PLACES = {
    "agreement": (["t.community_id"], ["t.unit_id"], []),
    "unit_registration": (["t.community_id"], ["t.unit_id"], []),
    "member_registration": (["t.community_id"], [f"({UNIT_OF.format('t.member_id')})"],
                            ["t.member_id"]),
    "service_post": (["t.community_id"], [], []),
    "post_claim": (["(SELECT community_id FROM service_post WHERE id = t.post_id)"],
                   [f"({UNIT_OF.format('t.member_id')})"], ["t.member_id"]),
    "service_record": ([f"({MEMBER_OF.format('t.member_id')})"],
                       [f"({UNIT_OF.format('t.member_id')})"], ["t.member_id"]),
    "point_entry": ([f"({MEMBER_OF.format('t.member_id')})",
                     "(SELECT community_id FROM unit WHERE id = t.unit_id)", "t.community_id"],
                    ["t.unit_id", f"({UNIT_OF.format('t.member_id')})"], ["t.member_id"]),
}


def expected(ctx, username, resource):
    """The rows `username` may read, from the placement above and the user's links."""
    _org_id, unit_id, member_id, path = link(ctx, username)
    communities, units, members = PLACES[resource]
    if username == "shequ01":
        clause = " OR ".join(f"{c} IN (SELECT id FROM organization WHERE path LIKE :p)"
                             for c in communities)
    elif username.startswith("danwei"):
        clause = " OR ".join(f"{u} = :u" for u in units) or "1=0"
        if resource == "service_post":  # published to the units standing in the community
            clause = "t.community_id = (SELECT community_id FROM unit WHERE id = :u)"
    else:
        clause = " OR ".join(f"{m} = :m" for m in members) or "1=0"
        if resource == "service_post":  # published to the members living in the community
            clause = "t.community_id = (SELECT community_id FROM member WHERE id = :m)"
    return set(ctx.execute(text(f"SELECT t.id FROM {resource} t WHERE t.deleted_on IS NULL "
                                f"AND ({clause})"),
                           {"p": (path or "") + "%", "u": unit_id, "m": member_id}).scalars())


def listed(browser, resource):
    from tests.security.support import listed_on_pages

    return listed_on_pages(browser, f"/{resource}/list/", resource, VIEWS[resource])


def api_ids(api, username, resource):
    client, headers = api(username)
    found, page = set(), 0
    while True:
        response = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:{page})",
                              headers=headers)
        assert response.status_code == 200
        rows = response.json["result"]
        found |= {row["id"] for row in rows}
        if len(found) >= response.json["count"] or not rows:
            return found, response.json["count"]
        page += 1


CASES = [(user, resource) for user in ("shequ01", "danwei01", "danwei02", "dangyuan01")
         for resource in PLACES
         if not (user == "dangyuan01" and resource in ("agreement", "unit_registration"))]


@pytest.mark.parametrize("username,resource", CASES)
def test_each_user_sees_exactly_its_rows(ctx, as_user, api, username, resource):
    want = expected(ctx, username, resource)
    assert want, f"the demo data should give {username} some {resource} to see"
    assert listed(as_user(username), resource) == want
    found, total = api_ids(api, username, resource)
    assert found == want and total == len(want)


def test_a_member_cannot_reach_agreements_or_unit_registrations(as_user, api):
    browser = as_user("dangyuan01")
    client, headers = api("dangyuan01")
    for resource in ("agreement", "unit_registration"):
        assert browser.get(f"/{resource}/list/").status_code == 403
        assert client.get(f"/api/v1/{resource}/", headers=headers).status_code == 403


def other_units_row(ctx, table, column="unit_id", username="danwei02"):
    unit = link(ctx, username).unit_id
    return ctx.execute(text(f"SELECT min(id) FROM {table} WHERE {column} = :u"), {"u": unit}).scalar()


def test_out_of_scope_rows_do_not_exist(ctx, as_user, api):
    browser = as_user("danwei01")
    client, headers = api("danwei01")
    agreement = other_units_row(ctx, "agreement")
    receipt = other_units_row(ctx, "unit_registration")
    record = ctx.execute(text("SELECT min(r.id) FROM service_record r JOIN member m "
                              "ON m.id = r.member_id WHERE m.work_unit_id = :u"),
                         {"u": link(ctx, "danwei02").unit_id}).scalar()
    assert agreement and receipt and record
    for url in (f"/agreement/show/{agreement}", f"/agreement/scan/{agreement}",
                f"/unit_registration/show/{receipt}", f"/unit_registration/receipt/{receipt}",
                f"/service_record/show/{record}", f"/service_record/edit/{record}"):
        assert browser.get(url).status_code == 404, url
    for url in (f"/api/v1/agreement/{agreement}", f"/api/v1/unit_registration/{receipt}",
                f"/api/v1/service_record/{record}"):
        assert client.get(url, headers=headers).status_code == 404, url
    before = ctx.execute(text("SELECT status, hours FROM service_record WHERE id = :i"),
                         {"i": record}).one()
    assert client.put(f"/api/v1/service_record/{record}", json={"hours": 9},
                      headers=headers).status_code == 404
    assert client.post(f"/api/v1/service_record/{record}/transition/resubmit",
                       headers=headers).status_code == 404
    assert ctx.execute(text("SELECT status, hours FROM service_record WHERE id = :i"),
                       {"i": record}).one() == before


def test_a_liaison_manages_its_units_registration_and_members_records_only(ctx, as_user, api):
    own_unit, other_unit = link(ctx, "danwei01").unit_id, link(ctx, "danwei02").unit_id
    client, headers = api("danwei01")
    registrations = count(ctx, "unit_registration")
    # Its own unit is already registered: once is enough; another unit's is not its to file.
    refused = client.post("/api/v1/unit_registration/", json={
        "unit": own_unit, "registered_on": str(clock.today())}, headers=headers)
    assert refused.status_code == 422 and "不能重复报到" in refused.json["message"]
    refused = client.post("/api/v1/unit_registration/", json={
        "unit": other_unit, "registered_on": str(clock.today())}, headers=headers)
    assert refused.status_code in (404, 422)
    assert count(ctx, "unit_registration") == registrations
    # The unit's members' service is logged by its liaison; another unit's member's is not.
    own_member = ctx.execute(text("SELECT min(id) FROM member WHERE work_unit_id = :u"),
                             {"u": own_unit}).scalar()
    other_member = ctx.execute(text("SELECT min(id) FROM member WHERE work_unit_id = :u"),
                               {"u": other_unit}).scalar()
    records = count(ctx, "service_record")
    body = {"served_on": str(clock.today()), "hours": 2, "description": "联络员代为登记"}
    logged = client.post("/api/v1/service_record/", json={**body, "member": own_member},
                         headers=headers)
    assert logged.status_code == 201, logged.get_data(as_text=True)
    refused = client.post("/api/v1/service_record/", json={**body, "member": other_member},
                          headers=headers)
    assert refused.status_code in (404, 422)
    response = as_user("danwei01").post("/service_record/add", form_of(**body, member=other_member),
                                        follow_redirects=True)
    assert "不存在或超出您的数据范围" in response.get_data(as_text=True)
    assert count(ctx, "service_record") == records + 1
    # It cannot certify what it logged: that is the community's.
    moved = client.post(f"/api/v1/service_record/{logged.json['id']}/transition/certify",
                        headers=headers)
    assert moved.status_code == 403
    assert ctx.execute(text("SELECT status FROM service_record WHERE id = :i"),
                       {"i": logged.json["id"]}).scalar() == "待认证"


def test_a_member_logs_and_registers_only_for_itself(ctx, api):
    member = link(ctx, "dangyuan01").member_id
    neighbour = new_members(ctx, home_community(ctx, "dangyuan01"), 1)[0]
    client, headers = api("dangyuan01")
    records, registrations = count(ctx, "service_record"), count(ctx, "member_registration")
    body = {"served_on": str(clock.today()), "hours": 1.5, "description": "楼道清扫"}
    own = client.post("/api/v1/service_record/", json={**body, "member": member}, headers=headers)
    assert own.status_code == 201, own.get_data(as_text=True)
    for response in (
            client.post("/api/v1/service_record/", json={**body, "member": neighbour},
                        headers=headers),
            client.post("/api/v1/member_registration/", headers=headers, json={
                "member": neighbour, "community": home_community(ctx, "dangyuan01"),
                "registered_on": str(clock.today())})):
        assert response.status_code in (404, 422), response.get_data(as_text=True)
    assert count(ctx, "service_record") == records + 1
    assert count(ctx, "member_registration") == registrations
    # Nor may it certify its own service.
    assert client.post(f"/api/v1/service_record/{own.json['id']}/transition/certify",
                       headers=headers).status_code == 403
