"""Personal data (issue 8, DOMAIN.md §6): 身份证号 and phone are masked for roles without the
permission `can_reveal` on member — in lists, show pages, the API and exports — and every full
reveal (a show page, an API read, an export with full numbers) leaves one audit record."""
import csv
import io
import json
import re

import pytest
from sqlalchemy import text

from app import validators

pytestmark = pytest.mark.db


def a_member(ctx):
    """A member of shequ01's community (every role below may read it), in clear."""
    from app import crypto

    row = ctx.execute(text(
        "SELECT m.id, m.id_number_enc, m.phone FROM member m JOIN ab_user u "
        "ON u.org_id = m.community_id WHERE u.username = 'shequ01' AND m.deleted_on IS NULL "
        "ORDER BY m.id")).first()
    with ctx.session():
        return row.id, crypto.decrypt(row.id_number_enc), row.phone


def marker(ctx):
    return ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()


def records_since(ctx, mark):
    return ctx.execute(text("SELECT action, resource, record_id, username, changes FROM audit_log "
                            "WHERE id > :m ORDER BY id"), {"m": mark}).all()


def body_of(response) -> str:
    """A streamed download read to the end and closed, as a browser does (ending its request)."""
    body = response.get_data()
    response.close()
    return body.decode("utf-8-sig")


@pytest.mark.parametrize("username", ["zuzhibu", "shequ01", "admin"])
def test_a_role_with_the_permission_sees_in_full_and_each_reveal_is_recorded(ctx, as_user, api,
                                                                            username):
    pk, number, phone = a_member(ctx)
    browser = as_user(username)
    mark = marker(ctx)
    page = browser.get(f"/member/show/{pk}").get_data(as_text=True)
    assert number in page and phone in page
    rows = records_since(ctx, mark)
    reveals = [r for r in rows if r.action == "reveal"]
    assert [(r.resource, r.record_id, r.username) for r in reveals] == [
        ("member", str(pk), username)]
    assert json.loads(reveals[0].changes)["rows"] == 1
    assert number not in reveals[0].changes

    client, headers = api(username)
    mark = marker(ctx)
    shown = client.get(f"/api/v1/member/{pk}", headers=headers).json["result"]
    assert shown["id_number_shown"] == number and shown["phone_shown"] == phone
    assert [(r.action, r.record_id) for r in records_since(ctx, mark)] == [("reveal", str(pk))]


@pytest.mark.parametrize("username", ["shenji", "dangyuan01"])
def test_a_role_without_it_sees_masked_everywhere_and_nothing_is_recorded(ctx, as_user, api,
                                                                         username):
    if username == "dangyuan01":  # a member sees only itself
        pk = ctx.execute(text("SELECT member_id FROM ab_user "
                              "WHERE username = 'dangyuan01'")).scalar()
        from app import crypto

        row = ctx.execute(text("SELECT id_number_enc, phone FROM member WHERE id = :i"),
                          {"i": pk}).one()
        with ctx.session():
            number, phone = crypto.decrypt(row.id_number_enc), row.phone
    else:
        pk, number, phone = a_member(ctx)
    browser = as_user(username)
    client, headers = api(username)
    mark = marker(ctx)
    page = browser.get(f"/member/show/{pk}").get_data(as_text=True)
    assert number not in page and phone not in page
    assert validators.mask_id_number(number) in page
    shown = client.get(f"/api/v1/member/{pk}", headers=headers).json["result"]
    assert shown["id_number_shown"] == validators.mask_id_number(number)
    assert shown["phone_shown"] == validators.mask_phone(phone)
    listed = client.get("/api/v1/member/?q=(page_size:100)", headers=headers).json["result"]
    assert all("*" in row["id_number_masked"] for row in listed)
    assert [r.action for r in records_since(ctx, mark)] == []


def test_lists_mask_for_everyone(ctx, as_user):
    pk, number, phone = a_member(ctx)
    browser = as_user("zuzhibu")
    mark = marker(ctx)
    page = browser.get("/member/list/?psize_MemberView=100").get_data(as_text=True)
    assert f"/member/show/{pk}" in page and number not in page and phone not in page
    assert [r.action for r in records_since(ctx, mark)] == []


def test_an_export_in_full_is_recorded_with_its_rows_and_a_masked_one_is_not(ctx, as_user):
    pk, number, _ = a_member(ctx)
    count = ctx.execute(text("SELECT count(*) FROM member WHERE deleted_on IS NULL")).scalar()
    browser = as_user("zuzhibu")
    mark = marker(ctx)
    body = body_of(browser.get("/member/export/csv"))
    assert number in body
    rows = records_since(ctx, mark)
    assert [r.action for r in rows] == ["export", "reveal"]
    reveal = json.loads(rows[1].changes)
    assert rows[1].resource == "member" and reveal["rows"] == count and pk in reveal["ids"]
    assert not any(number in (r.changes or "") for r in rows)

    browser = as_user("shenji")
    mark = marker(ctx)
    body = body_of(browser.get("/member/export/csv"))
    table = list(csv.reader(io.StringIO(body)))
    assert number not in body and len(table) - 1 == count
    assert [r.action for r in records_since(ctx, mark)] == ["export"]


def test_the_permission_is_granted_per_role(app, ctx, as_user):
    """Give the auditor `can_reveal` and it sees in full (and is recorded); take it back and
    it sees masked again. Nothing else decides."""
    from app.extensions import appbuilder

    pk, number, _ = a_member(ctx)

    def grant(present: bool):
        with ctx.session():
            sm = appbuilder.sm
            role = sm.find_role("Auditor")
            pv = sm.find_permission_view_menu("can_reveal", "member")
            assert pv is not None, "sync_roles creates the permission"
            if present:
                sm.add_permission_role(role, pv)
            else:
                sm.del_permission_role(role, pv)

    assert number not in as_user("shenji").get(f"/member/show/{pk}").get_data(as_text=True)
    grant(True)
    try:
        browser = as_user("shenji")
        mark = marker(ctx)
        assert number in browser.get(f"/member/show/{pk}").get_data(as_text=True)
        assert [(r.action, r.username) for r in records_since(ctx, mark)] == [("reveal", "shenji")]
    finally:
        grant(False)
    assert number not in as_user("shenji").get(f"/member/show/{pk}").get_data(as_text=True)


def test_roles_of_the_permission(ctx):
    granted = {row[0] for row in ctx.execute(text(
        "SELECT r.name FROM ab_role r JOIN ab_permission_view_role pvr ON pvr.role_id = r.id "
        "JOIN ab_permission_view pv ON pv.id = pvr.permission_view_id "
        "JOIN ab_permission p ON p.id = pv.permission_id "
        "JOIN ab_view_menu v ON v.id = pv.view_menu_id "
        "WHERE p.name = 'can_reveal' AND v.name = 'member'"))}
    assert granted == {"Admin", "OrgAdmin", "StreetAdmin", "CommunityAdmin", "UnitLiaison"}


def test_dashboards_carry_no_personal_data(ctx, as_user):
    numbers = set()
    from app import crypto

    rows = ctx.execute(text("SELECT id_number_enc, phone FROM member")).all()
    with ctx.session():
        for row in rows:
            numbers.add(crypto.decrypt(row.id_number_enc))
            numbers.add(row.phone)
    page = as_user("zuzhibu").get("/dashboard/").get_data(as_text=True)
    found = set(re.findall(r"\d{11,18}X?", page))
    assert not (found & numbers)
