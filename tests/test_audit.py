"""Records that must not be lost (DOMAIN.md §6): one audit record per write, with who, what and
before → after, personal data masked; deletes are soft; 身份证号 is stored encrypted; logins are
recorded as logins, not as updates of the user row. Checked with plain SQL."""
import json
import random
import re
import uuid

import pytest
from sqlalchemy import text

from app import validators
from tests.conftest import TEST_PASSWORD, logout

pytestmark = pytest.mark.db

MASK = "******"
_rng = random.SystemRandom()
# Every 身份证号 and phone this module gives a member: none may show up in clear anywhere.
ISSUED_IDS: set[str] = set()
ISSUED_PHONES: set[str] = set()


def new_id_number() -> str:
    while True:
        born = f"{_rng.randint(1950, 2000)}{_rng.randint(1, 12):02d}{_rng.randint(1, 28):02d}"
        body = f"320102{born}{_rng.randint(0, 999):03d}"
        number = body + validators.id_number_check_char(body)
        if number not in ISSUED_IDS:
            ISSUED_IDS.add(number)
            return number


def new_phone() -> str:
    phone = f"139{_rng.randint(0, 99_999_999):08d}"
    ISSUED_PHONES.add(phone)
    return phone


def new_credit_code() -> str:
    body = "91320102" + "".join(_rng.choice(validators.CREDIT_CODE_CHARSET) for _ in range(9))
    return body + validators.credit_code_check_char(body)


def uid() -> str:
    return uuid.uuid4().hex[:10].upper()


# --- plain SQL --------------------------------------------------------------------------------

def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def last_audit_id(ctx) -> int:
    return scalar(ctx, "SELECT coalesce(max(id), 0) FROM audit_log")


def audit_since(ctx, marker: int) -> list:
    return ctx.execute(text(
        "SELECT id, user_id, username, action, resource, record_id, changes FROM audit_log "
        "WHERE id > :m ORDER BY id"), {"m": marker}).all()


def user_id(ctx, username: str) -> int:
    return scalar(ctx, "SELECT id FROM ab_user WHERE username = :u", u=username)


def org_id(ctx, code: str) -> int:
    return scalar(ctx, "SELECT id FROM organization WHERE code = :c", c=code)


def the_one_record(ctx, marker, action, resource, record_id, username) -> dict:
    """Exactly one record since `marker`, the right one; returns its changes."""
    rows = audit_since(ctx, marker)
    assert [(r.action, r.resource, r.record_id, r.username) for r in rows] == [
        (action, resource, str(record_id), username)]
    assert rows[0].user_id == user_id(ctx, username)
    return json.loads(rows[0].changes) if rows[0].changes else {}


# --- the three resources, as a form and an API body -------------------------------------------

def create_body(ctx, resource: str) -> dict:
    tag = uid()
    community = org_id(ctx, "YX0101")
    if resource == "organization":
        return {"parent": community, "type": "grid", "code": f"A{tag}", "name": f"审计网格{tag}",
                "grid_kind": "城市", "active": True}
    if resource == "unit":
        category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'unit_category'")
        return {"name": f"审计单位{tag}", "credit_code": new_credit_code(), "category": category,
                "community": community, "party_member_count": 2, "status": "在册"}
    return {"name": f"审计{tag[:4]}", "id_number": new_id_number(), "phone": new_phone(),
            "community": community, "category": "在职", "status": "正常"}


# The edit form's fields as they stand in the table (what a browser sends back unchanged).
FORM_COLUMNS = {
    "organization": {"parent": "parent_id", "type": "type", "code": "code", "name": "name",
                     "secretary": "secretary", "phone": "phone", "address": "address",
                     "grid_kind": "grid_kind", "active": "active"},
    "unit": {"name": "name", "credit_code": "credit_code", "category": "category_id",
             "community": "community_id", "address": "address",
             "party_org_name": "party_org_name", "party_org_type": "party_org_type",
             "party_member_count": "party_member_count", "leader_name": "leader_name",
             "leader_title": "leader_title", "liaison_name": "liaison_name",
             "contact_phone": "contact_phone", "status": "status",
             "cancel_reason": "cancel_reason", "cancelled_on": "cancelled_on"},
    "member": {"name": "name", "gender": "gender", "phone": "phone",
               "community": "community_id", "group": "group_id", "work_unit": "work_unit_id",
               "category": "category", "skills": "skills",
               "is_household_center": "is_household_center",
               "is_red_grid_worker": "is_red_grid_worker", "status": "status"},
}
BOOLEANS = {"active", "is_household_center", "is_red_grid_worker"}


def edit_form(ctx, resource: str, pk: int, id_number: str | None = None, **changes) -> dict:
    columns = FORM_COLUMNS[resource]
    row = ctx.execute(text(f"SELECT {', '.join(columns.values())} FROM {resource} WHERE id = :i"),
                      {"i": pk}).one()._mapping
    data = {}
    for field, column in columns.items():
        value = row[column]
        if field in BOOLEANS:
            if value:
                data[field] = "y"
        else:
            data[field] = "" if value is None else str(value)
    if resource == "member":
        data["id_number"] = id_number
    data.update({k: str(v) for k, v in changes.items()})
    return data


def as_form(body: dict) -> dict:
    return {k: ("y" if v is True else str(v)) for k, v in body.items() if v is not False}


def find_id(ctx, resource: str, name: str) -> int:
    ids = ctx.execute(text(f"SELECT id FROM {resource} WHERE name = :n"),
                      {"n": name}).scalars().all()
    assert len(ids) == 1, ids
    return ids[0]


RESOURCES = ["organization", "unit", "member"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_form_writes_leave_one_record_each(ctx, as_user, resource):
    browser = as_user("zuzhibu")
    body = create_body(ctx, resource)

    marker = last_audit_id(ctx)
    response = browser.post(f"/{resource}/add", as_form(body), follow_redirects=True)
    assert response.status_code == 200
    pk = find_id(ctx, resource, body["name"])
    created = the_one_record(ctx, marker, "create", resource, pk, "zuzhibu")
    assert created["name"] == [None, body["name"]]

    marker = last_audit_id(ctx)
    renamed = body["name"] + "改"
    form = edit_form(ctx, resource, pk, id_number=body.get("id_number"), name=renamed)
    response = browser.post(f"/{resource}/edit/{pk}", form, form_url=f"/{resource}/edit/{pk}",
                            follow_redirects=True)
    assert response.status_code == 200
    assert scalar(ctx, f"SELECT name FROM {resource} WHERE id = :i", i=pk) == renamed
    updated = the_one_record(ctx, marker, "update", resource, pk, "zuzhibu")
    # What changed, and only that: the fields sent back unchanged are no change.
    assert updated == {"name": [body["name"], renamed]}

    marker = last_audit_id(ctx)
    response = browser.post(f"/{resource}/delete/{pk}", form_url=f"/{resource}/list/",
                            follow_redirects=True)
    assert response.status_code == 200
    deleted = the_one_record(ctx, marker, "delete", resource, pk, "zuzhibu")
    assert deleted["deleted_on"][0] is None and deleted["deleted_on"][1]
    assert scalar(ctx, f"SELECT deleted_on FROM {resource} WHERE id = :i", i=pk) is not None


@pytest.mark.parametrize("resource", RESOURCES)
def test_api_writes_leave_one_record_each(ctx, api, resource):
    # A community admin this time: the record names whoever acted.
    client, headers = api("shequ01")
    body = create_body(ctx, resource)

    marker = last_audit_id(ctx)
    response = client.post(f"/api/v1/{resource}/", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    pk = response.json["id"]
    created = the_one_record(ctx, marker, "create", resource, pk, "shequ01")
    assert created["name"] == [None, body["name"]]

    marker = last_audit_id(ctx)
    renamed = body["name"] + "改"
    response = client.put(f"/api/v1/{resource}/{pk}", json={"name": renamed}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    updated = the_one_record(ctx, marker, "update", resource, pk, "shequ01")
    assert updated == {"name": [body["name"], renamed]}

    marker = last_audit_id(ctx)
    response = client.delete(f"/api/v1/{resource}/{pk}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    deleted = the_one_record(ctx, marker, "delete", resource, pk, "shequ01")
    assert deleted["deleted_on"][0] is None and deleted["deleted_on"][1]


def test_a_refused_write_leaves_no_record(ctx, api):
    client, headers = api("zuzhibu")
    body = create_body(ctx, "unit")
    code = body["credit_code"]
    body["credit_code"] = code[:-1] + ("0" if code[-1] != "0" else "1")  # a wrong check character
    marker = last_audit_id(ctx)
    assert client.post("/api/v1/unit/", json=body, headers=headers).status_code == 422
    assert audit_since(ctx, marker) == []


# --- personal data ----------------------------------------------------------------------------

def member_records(ctx, pk: int) -> list:
    return ctx.execute(text("SELECT action, changes FROM audit_log WHERE resource = 'member' "
                            "AND record_id = :r ORDER BY id"), {"r": str(pk)}).all()


def assert_masked(records, secrets_: list[str]) -> None:
    for record in records:
        raw = record.changes or ""
        for secret in secrets_:
            assert secret not in raw, f"{secret} in clear in a {record.action} record"
        changes = json.loads(raw) if raw else {}
        for field in ("phone", "id_number_enc", "id_number_hash", "id_number_key"):
            if field in changes:
                assert all(v in (None, MASK) for v in changes[field]), (field, changes[field])


def test_member_records_never_show_the_id_number_or_phone(ctx, as_user, api):
    client, headers = api("zuzhibu")
    body = create_body(ctx, "member")
    response = client.post("/api/v1/member/", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    pk = response.json["id"]
    # A new phone and a new number, through the API and through the form.
    phone2, number2 = new_phone(), new_id_number()
    response = client.put(f"/api/v1/member/{pk}", json={"phone": phone2, "id_number": number2},
                          headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    phone3, number3 = new_phone(), new_id_number()
    browser = as_user("zuzhibu")
    form = edit_form(ctx, "member", pk, id_number=number3, phone=phone3)
    response = browser.post(f"/member/edit/{pk}", form, form_url=f"/member/edit/{pk}",
                            follow_redirects=True)
    assert response.status_code == 200
    assert scalar(ctx, "SELECT phone FROM member WHERE id = :i", i=pk) == phone3
    assert client.delete(f"/api/v1/member/{pk}", headers=headers).status_code == 200

    records = member_records(ctx, pk)
    assert [r.action for r in records] == ["create", "update", "update", "delete"]
    for update in records[1:3]:
        changes = json.loads(update.changes)
        assert changes["phone"] == [MASK, MASK]
        assert changes["id_number_enc"] == [MASK, MASK]
    secrets_ = [body["id_number"], number2, number3, body["phone"], phone2, phone3]
    # Nor their masked-for-lists forms, which show most of the digits.
    secrets_ += [validators.mask_id_number(n) for n in (body["id_number"], number2, number3)]
    assert_masked(records, secrets_)


def test_a_form_created_member_is_recorded_masked(ctx, as_user):
    body = create_body(ctx, "member")
    response = as_user("zuzhibu").post("/member/add", as_form(body), follow_redirects=True)
    assert response.status_code == 200
    pk = find_id(ctx, "member", body["name"])
    records = member_records(ctx, pk)
    assert [r.action for r in records] == ["create"]
    assert json.loads(records[0].changes)["phone"] == [None, MASK]
    assert_masked(records, [body["id_number"], body["phone"]])


def listed_member_ids(browser, name: str) -> set[int]:
    page = browser.get(f"/member/list/?_flt_0_name={name}&psize_MemberView=100")
    assert page.status_code == 200
    return {int(pk) for pk in re.findall(r'href="/member/show/(\d+)"', page.get_data(as_text=True))}


def api_member_ids(client, headers, name: str) -> set[int]:
    query = f"(filters:!((col:name,opr:eq,value:'{name}')),page_size:100)"
    response = client.get(f"/api/v1/member/?q={query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["id"] for row in response.json["result"]}


def test_a_soft_deleted_member_vanishes_but_stays_in_the_table(ctx, as_user, api):
    client, headers = api("zuzhibu")
    browser = as_user("zuzhibu")
    body = create_body(ctx, "member")
    response = client.post("/api/v1/member/", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    pk = response.json["id"]
    # Seen everywhere before the delete...
    assert listed_member_ids(browser, body["name"]) == {pk}
    assert browser.get(f"/member/show/{pk}").status_code == 200
    assert client.get(f"/api/v1/member/{pk}", headers=headers).status_code == 200
    assert api_member_ids(client, headers, body["name"]) == {pk}

    response = browser.post(f"/member/delete/{pk}", form_url="/member/list/",
                            follow_redirects=True)
    assert response.status_code == 200

    # ...and nowhere after it.
    assert listed_member_ids(browser, body["name"]) == set()
    assert browser.get(f"/member/show/{pk}").status_code == 404
    assert browser.get(f"/member/edit/{pk}").status_code == 404
    assert client.get(f"/api/v1/member/{pk}", headers=headers).status_code == 404
    response = client.put(f"/api/v1/member/{pk}", json={"name": "复活"}, headers=headers)
    assert response.status_code == 404
    assert api_member_ids(client, headers, body["name"]) == set()
    row = ctx.execute(text("SELECT name, deleted_on, deleted_by_id, id_number_key FROM member "
                           "WHERE id = :i"), {"i": pk}).one()
    assert row.name == body["name"]
    assert row.deleted_on is not None
    assert row.deleted_by_id == user_id(ctx, "zuzhibu")
    # Its 身份证号 no longer blocks a new member with the same number (DOMAIN.md §6).
    assert row.id_number_key is None
    again = client.post("/api/v1/member/", headers=headers,
                        json={**body, "name": body["name"] + "新"})
    assert again.status_code == 201, again.get_data(as_text=True)


def test_id_numbers_are_stored_encrypted(ctx, as_user, api):
    client, headers = api("zuzhibu")
    by_api = create_body(ctx, "member")
    assert client.post("/api/v1/member/", json=by_api, headers=headers).status_code == 201
    by_form = create_body(ctx, "member")
    response = as_user("zuzhibu").post("/member/add", as_form(by_form), follow_redirects=True)
    assert response.status_code == 200
    pk = find_id(ctx, "member", by_form["name"])

    dump = ctx.execute(text("SELECT * FROM member")).all()
    assert len(dump) >= 2
    cells = [str(value) for row in dump for value in row]
    assert ISSUED_IDS >= {by_api["id_number"], by_form["id_number"]}
    for number in ISSUED_IDS:
        assert not any(number in cell for cell in cells), f"{number} stored in clear"
    # Stored, though: the key decrypts it.
    from app import crypto

    stored = scalar(ctx, "SELECT id_number_enc FROM member WHERE id = :i", i=pk)
    with ctx.session():
        assert crypto.decrypt(stored) == by_form["id_number"]


# --- logins -----------------------------------------------------------------------------------

def form_login(app, username, password):
    client = app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login/", data={"username": username, "password": password,
                                            "csrf_token": token})
    return client, response


def test_a_login_is_one_login_record(app, ctx):
    marker = last_audit_id(ctx)
    client, response = form_login(app, "shenji", TEST_PASSWORD)
    assert response.status_code == 302
    assert client.get("/member/list/").status_code == 200
    assert the_one_record(ctx, marker, "login", "ab_user", user_id(ctx, "shenji"), "shenji") == {}

    marker = last_audit_id(ctx)
    response = app.test_client().post("/api/v1/security/login", json={
        "username": "shenji", "password": TEST_PASSWORD, "provider": "db"})
    assert response.status_code == 200
    the_one_record(ctx, marker, "login", "ab_user", user_id(ctx, "shenji"), "shenji")

    marker = last_audit_id(ctx)
    assert logout(client).status_code == 302
    the_one_record(ctx, marker, "logout", "ab_user", user_id(ctx, "shenji"), "shenji")


def test_a_failed_login_is_one_login_failed_record(app, ctx):
    fails = scalar(ctx, "SELECT fail_login_count FROM ab_user WHERE username = 'danwei03'") or 0
    marker = last_audit_id(ctx)
    client, response = form_login(app, "danwei03", "wrong-" + TEST_PASSWORD)
    assert response.status_code == 302
    assert client.get("/member/list/").status_code == 302  # not logged in: sent to the login page
    rows = audit_since(ctx, marker)
    assert [(r.action, r.resource, r.username) for r in rows] == [
        ("login_failed", "ab_user", "danwei03")]
    # The user row did change (its failure count), yet that is no `update` record.
    fails_now = scalar(ctx, "SELECT fail_login_count FROM ab_user WHERE username = 'danwei03'")
    assert fails_now == fails + 1

    marker = last_audit_id(ctx)
    response = app.test_client().post("/api/v1/security/login", json={
        "username": "danwei03", "password": "wrong", "provider": "db"})
    assert response.status_code == 401
    assert [(r.action, r.username) for r in audit_since(ctx, marker)] == [
        ("login_failed", "danwei03")]

    # An unknown name is recorded too, and touches no user row's record.
    marker = last_audit_id(ctx)
    form_login(app, "nobody-" + uid(), TEST_PASSWORD)
    rows = audit_since(ctx, marker)
    assert [(r.action, r.resource, r.record_id, r.user_id) for r in rows] == [
        ("login_failed", "ab_user", None, None)]
    # The good password still works afterwards, and resets the count without an update record.
    marker = last_audit_id(ctx)
    _, response = form_login(app, "danwei03", TEST_PASSWORD)
    assert response.status_code == 302
    assert [r.action for r in audit_since(ctx, marker)] == ["login"]
    assert scalar(ctx, "SELECT fail_login_count FROM ab_user WHERE username = 'danwei03'") == 0
