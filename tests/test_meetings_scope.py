"""Data scope of joint meetings (DOMAIN.md §4): what each demo user sees of bodies, meetings and
their children equals a set computed here with plain SQL; a liaison sees the bodies its unit
belongs to, their meetings, and the resolutions its unit leads or co-leads; the lead unit's
liaison reports progress on its resolution, another unit's liaison does not even see it."""
from datetime import timedelta

import pytest
from sqlalchemy import text

from app import clock
from tests.conftest import DEMO_USERS
from tests.test_meetings_support import (
    api_ids,
    api_says,
    body_id,
    count,
    make_meeting,
    make_note,
    make_resolution,
    member_units,
    page_says,
    shown_ids,
    unit_of,
)

pytestmark = pytest.mark.db

VIEWS = {"joint_body": "JointBodyView", "body_member": "BodyMemberView",
         "meeting": "MeetingView", "attendance": "AttendanceView",
         "agenda_item": "AgendaItemView", "resolution": "ResolutionView",
         "supervision_note": "SupervisionNoteView"}

# Where each resource's rows sit: the body's host, reached by plain joins.
HOST = {
    "joint_body": "SELECT r.id, r.host_id FROM joint_body r",
    "body_member": "SELECT r.id, b.host_id FROM body_member r JOIN joint_body b ON b.id = r.body_id",
    "meeting": "SELECT r.id, b.host_id FROM meeting r JOIN joint_body b ON b.id = r.body_id",
    "attendance": "SELECT r.id, b.host_id FROM attendance r JOIN meeting m ON m.id = r.meeting_id "
                  "JOIN joint_body b ON b.id = m.body_id",
    "agenda_item": "SELECT r.id, b.host_id FROM agenda_item r JOIN meeting m ON m.id = r.meeting_id "
                   "JOIN joint_body b ON b.id = m.body_id",
    "resolution": "SELECT r.id, b.host_id FROM resolution r JOIN meeting m ON m.id = r.meeting_id "
                  "JOIN joint_body b ON b.id = m.body_id",
    "supervision_note": "SELECT r.id, b.host_id FROM supervision_note r "
                        "JOIN resolution s ON s.id = r.resolution_id "
                        "JOIN meeting m ON m.id = s.meeting_id JOIN joint_body b ON b.id = m.body_id",
}
MY_BODIES = "(SELECT body_id FROM body_member WHERE unit_id = :u AND deleted_on IS NULL)"
MY_MEETINGS = f"(SELECT id FROM meeting WHERE body_id IN {MY_BODIES})"
MY_RESOLUTIONS = ("(SELECT id FROM resolution WHERE lead_unit_id = :u UNION "
                  "SELECT resolution_id FROM resolution_co_unit WHERE unit_id = :u)")
LIAISON = {
    "joint_body": f"id IN {MY_BODIES}",
    "body_member": f"body_id IN {MY_BODIES}",
    "meeting": f"body_id IN {MY_BODIES}",
    "attendance": f"(meeting_id IN {MY_MEETINGS} OR unit_id = :u)",
    "agenda_item": f"meeting_id IN {MY_MEETINGS}",
    "resolution": f"id IN {MY_RESOLUTIONS}",
    "supervision_note": f"(unit_id = :u OR resolution_id IN {MY_RESOLUTIONS})",
}


def ids(ctx, sql, **params) -> set[int]:
    return set(ctx.execute(text(sql), params).scalars())


def expected(ctx, username, resource) -> set[int]:
    """The rows `username` may read, written out by hand for each role (not via app code)."""
    if username in ("admin", "zuzhibu", "shenji"):
        return ids(ctx, f"SELECT id FROM {resource} WHERE deleted_on IS NULL")
    link = ctx.execute(text("SELECT u.unit_id, o.path FROM ab_user u LEFT JOIN organization o "
                            "ON o.id = u.org_id WHERE u.username = :u"), {"u": username}).one()
    if username in ("jiedao01", "shequ01"):
        return ids(ctx, f"SELECT q.id FROM ({HOST[resource]} WHERE r.deleted_on IS NULL) q "
                        "WHERE q.host_id IN (SELECT id FROM organization WHERE path LIKE :p)",
                   p=link.path + "%")
    return ids(ctx, f"SELECT id FROM {resource} WHERE deleted_on IS NULL AND {LIAISON[resource]}",
               u=link.unit_id)


@pytest.fixture(scope="module")
def shared_resolutions(app):
    """In the seeded body of YX0101: one resolution danwei01's unit leads alone, one it leads
    with danwei02's unit as co-unit, each with a note of the host."""
    from tests.conftest import Db

    ctx = Db(app)
    body = body_id(ctx)
    u1, u2 = unit_of(ctx, "danwei01"), unit_of(ctx, "danwei02")
    assert {u1, u2} <= set(member_units(ctx, body))
    meeting = make_meeting(ctx, body, "季研讨会")
    alone = make_resolution(ctx, meeting, u1, deadline=clock.today() + timedelta(days=30))
    shared = make_resolution(ctx, meeting, u1, co=[u2], deadline=clock.today() + timedelta(days=30))
    return {"meeting": meeting, "alone": alone, "shared": shared,
            "alone_note": make_note(ctx, alone), "shared_note": make_note(ctx, shared)}


# OrgAdmin reads as Admin does; a member has no right to meetings (tested below).
@pytest.mark.parametrize("username", [u for u in DEMO_USERS
                                      if u not in ("zuzhibu", "dangyuan01", "wangge01")])
def test_each_user_sees_exactly_its_rows(ctx, as_user, api, shared_resolutions, username):
    browser, session = as_user(username), api(username)
    for resource, view in VIEWS.items():
        want = expected(ctx, username, resource)
        assert want, f"the test data should give {username} some {resource} to see"
        assert shown_ids(browser, resource, view) == want, resource
        assert api_ids(api, username, resource, session) == want, resource


def test_scopes_differ_where_the_domain_says(ctx, shared_resolutions):
    everything = expected(ctx, "admin", "meeting")
    street = expected(ctx, "jiedao01", "meeting")
    community = expected(ctx, "shequ01", "meeting")
    assert community <= street < everything
    assert expected(ctx, "danwei01", "meeting") == expected(ctx, "danwei02", "meeting")
    assert expected(ctx, "danwei01", "meeting").isdisjoint(expected(ctx, "danwei03", "meeting"))
    mine, theirs = expected(ctx, "danwei01", "resolution"), expected(ctx, "danwei02", "resolution")
    assert shared_resolutions["alone"] in mine - theirs
    assert shared_resolutions["shared"] in mine & theirs


def test_a_member_sees_no_meetings(as_user, api):
    assert as_user("dangyuan01").get("/meeting/list/").status_code == 403
    client, headers = api("dangyuan01")
    assert client.get("/api/v1/resolution/", headers=headers).status_code == 403


# --- supervision: the lead unit reports progress, another unit does not see it -------------------

def note_row(ctx, pk):
    return ctx.execute(text("SELECT resolution_id, unit_id, content, progress, author "
                            "FROM supervision_note WHERE id = :i"), {"i": pk}).one()


def test_the_lead_units_liaison_adds_progress(ctx, as_user, api, shared_resolutions):
    rid = shared_resolutions["alone"]
    u1 = unit_of(ctx, "danwei01")
    browser = as_user("danwei01")
    form_url = f"/supervision_note/add?_flt_0_resolution={rid}"
    assert browser.get(form_url).status_code == 200
    before = count(ctx, "supervision_note")
    response = browser.post(form_url, {"note_date": str(clock.today()), "content": "已完成摸排",
                                       "progress": "40", "unit": "", "author": ""})
    assert response.status_code == 302
    assert count(ctx, "supervision_note") == before + 1
    made = ctx.execute(text("SELECT max(id) FROM supervision_note")).scalar()
    resolution, unit, content, progress, author = note_row(ctx, made)
    assert (resolution, unit, content, progress) == (rid, u1, "已完成摸排", 40)
    assert author  # who wrote it, by default
    client, headers = api("danwei01")
    response = client.post("/api/v1/supervision_note/", headers=headers, json={
        "resolution": rid, "content": "方案已报社区", "progress": 70,
        "note_date": str(clock.today())})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert note_row(ctx, response.json["id"])[:2] == (rid, u1)
    # Its own report it may correct; the host's note it reads but may not change.
    own = response.json["id"]
    assert client.put(f"/api/v1/supervision_note/{own}", headers=headers,
                      json={"progress": 80}).status_code == 200
    assert note_row(ctx, own).progress == 80
    host_note = shared_resolutions["alone_note"]
    assert client.get(f"/api/v1/supervision_note/{host_note}", headers=headers).status_code == 200
    before_host = note_row(ctx, host_note)
    api_says(client.put(f"/api/v1/supervision_note/{host_note}", headers=headers,
                        json={"content": "改掉主办方的督办意见"}), "无权修改该督办记录")
    assert note_row(ctx, host_note) == before_host
    # The resolution's page shows the progress, in order.
    page = browser.get(f"/resolution/show/{rid}").get_data(as_text=True)
    assert "已完成摸排" in page and "方案已报社区" in page and "进展报告" in page


def test_another_units_liaison_cannot_see_it(ctx, as_user, api, shared_resolutions):
    rid, note = shared_resolutions["alone"], shared_resolutions["alone_note"]
    browser = as_user("danwei02")
    assert browser.get(f"/resolution/show/{rid}").status_code == 404
    assert browser.get(f"/resolution/edit/{rid}").status_code in (403, 404)
    assert browser.get(f"/supervision_note/show/{note}").status_code == 404
    assert rid not in shown_ids(browser, "resolution", "ResolutionView")
    client, headers = api("danwei02")
    assert client.get(f"/api/v1/resolution/{rid}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/supervision_note/{note}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/resolution/{rid}/transition/start",
                       headers=headers).status_code == 404
    # Nor write progress on it, through the form or the API.
    before = count(ctx, "supervision_note")
    response = browser.post(f"/supervision_note/add?_flt_0_resolution={rid}", {
        "note_date": str(clock.today()), "content": "冒名报送", "progress": "100"},
        form_url="/supervision_note/add")
    assert response.status_code == 404
    response = browser.post("/supervision_note/add", {
        "resolution": str(rid), "note_date": str(clock.today()), "content": "冒名报送"},
        follow_redirects=True)
    page_says(response, "不存在或超出您的数据范围")
    response = client.post("/api/v1/supervision_note/", headers=headers, json={
        "resolution": rid, "content": "冒名报送", "note_date": str(clock.today())})
    assert response.status_code in (404, 422), response.status_code
    assert count(ctx, "supervision_note") == before
    # The meeting page shows it only what it may read.
    page = browser.get(f"/meeting/show/{shared_resolutions['meeting']}").get_data(as_text=True)
    assert f"/resolution/show/{shared_resolutions['shared']}" in page
    assert f"/resolution/show/{rid}" not in page


def test_a_co_unit_reads_but_does_not_report_progress(ctx, as_user, api, shared_resolutions):
    rid = shared_resolutions["shared"]
    client, headers = api("danwei02")
    assert client.get(f"/api/v1/resolution/{rid}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/supervision_note/{shared_resolutions['shared_note']}",
                      headers=headers).status_code == 200
    before = count(ctx, "supervision_note")
    api_says(client.post("/api/v1/supervision_note/", headers=headers, json={
        "resolution": rid, "content": "配合单位报送", "note_date": str(clock.today())}),
        "只有牵头单位可以报送办理进展")
    assert client.post(f"/api/v1/resolution/{rid}/transition/start",
                       headers=headers).status_code == 403
    assert count(ctx, "supervision_note") == before


def test_a_unit_outside_the_body_sees_none_of_it(ctx, as_user, api, shared_resolutions):
    browser = as_user("danwei03")
    meeting, body = shared_resolutions["meeting"], body_id(ctx)
    assert browser.get(f"/meeting/show/{meeting}").status_code == 404
    assert browser.get(f"/joint_body/show/{body}").status_code == 404
    client, headers = api("danwei03")
    assert client.get(f"/api/v1/meeting/{meeting}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/resolution/{shared_resolutions['shared']}",
                      headers=headers).status_code == 404


def test_a_community_admin_cannot_place_a_body_outside_its_community(ctx, api):
    other = ctx.execute(text("SELECT id FROM organization WHERE code = 'YX0201'")).scalar()
    own = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    before = count(ctx, "joint_body")
    client, headers = api("shequ01")
    response = client.post("/api/v1/joint_body/", headers=headers,
                           json={"name": "越权联席会", "host": other})
    assert response.status_code in (404, 422)
    assert count(ctx, "joint_body") == before
    grid = ctx.execute(text("SELECT id FROM organization WHERE parent_id = :p AND type = 'grid'"),
                       {"p": own}).scalar()
    api_says(client.post("/api/v1/joint_body/", headers=headers,
                         json={"name": "网格联席会", "host": grid}),
             "主办党组织须是区委、街道党工委或社区党组织")
    ok = client.post("/api/v1/joint_body/", headers=headers, json={"name": "本社区联席会", "host": own})
    assert ok.status_code == 201
    assert ctx.execute(text("SELECT level FROM joint_body WHERE id = :i"),
                       {"i": ok.json["id"]}).scalar() == "社区"


def test_only_units_of_the_hosts_area_join_a_body(ctx, api):
    body = body_id(ctx)
    client, headers = api("jiedao01")
    outsider = unit_of(ctx, "danwei03")
    before = count(ctx, "body_member")
    api_says(client.post("/api/v1/body_member/", headers=headers,
                         json={"body": body, "unit": outsider}), "辖区内")
    api_says(client.post("/api/v1/body_member/", headers=headers,
                         json={"body": body, "unit": unit_of(ctx, "danwei01")}), "已是该联席会的成员单位")
    assert count(ctx, "body_member") == before
