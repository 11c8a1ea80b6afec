"""Login protection (issue 8): five wrong passwords lock the account for ten minutes — on the
form and on the API alike, the right password refused with a message that says so — while
another user from the same address logs in as usual; attempts are rate-limited per username
and address; every attempt is one audit record. Time is moved, never waited for."""
import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from app import clock as app_clock
from app.security import login_guard
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.db


class Clock:
    """login_guard's clock, moved by hand."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self):
        return app_clock.utcnow() + self.offset

    def advance(self, **delta):
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(login_guard, "now", clock)
    return clock


@pytest.fixture
def new_user(app, ctx):
    """A fresh account (the demo users are shared by every test: none of them is locked)."""
    def make(role="Auditor"):
        from app.extensions import appbuilder

        name = f"acct{uuid.uuid4().hex[:8]}"
        with ctx.session():
            user = appbuilder.sm.add_user(name, "测试", "用户", f"{name}@gongjian.invalid",
                                          appbuilder.sm.find_role(role), password=TEST_PASSWORD)
            assert user is not None
        return name
    return make


def form_login(app, username, password, address=None):
    client = app.test_client()
    environ = {"REMOTE_ADDR": address} if address else {}
    page = client.get("/login/", environ_base=environ).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login/", data={"username": username, "password": password,
                                            "csrf_token": token},
                           follow_redirects=True, environ_base=environ)
    return client, response


def logged_in(client) -> bool:
    return client.get("/member/list/").status_code == 200


def api_login(app, username, password, address=None):
    environ = {"REMOTE_ADDR": address} if address else {}
    return app.test_client().post("/api/v1/security/login", environ_base=environ, json={
        "username": username, "password": password, "provider": "db"})


def last_audit_id(ctx) -> int:
    return ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()


def records_since(ctx, marker):
    return ctx.execute(text("SELECT action, resource, record_id, user_id, username, changes "
                            "FROM audit_log WHERE id > :m ORDER BY id"), {"m": marker}).all()


def account(ctx, username):
    return ctx.execute(text("SELECT id, fail_login_count, locked_until FROM ab_user "
                            "WHERE username = :u"), {"u": username}).one()


def test_five_wrong_passwords_lock_the_account_on_the_form_and_the_api(app, ctx, clock,
                                                                          new_user):
    name = new_user()
    other = new_user()
    user_id = account(ctx, name).id
    marker = last_audit_id(ctx)
    # Three wrong on the form, two on the API: the count is the account's, not the channel's.
    for attempt in range(3):
        client, response = form_login(app, name, f"Wrong-Passw0rd{attempt}")
        assert not logged_in(client)
    assert api_login(app, name, "Wrong-Passw0rd3").status_code == 401
    assert account(ctx, name).locked_until is None, "four failures do not lock yet"
    response = api_login(app, name, "Wrong-Passw0rd4")
    assert response.status_code == 401 and "锁定" in response.json["message"]
    locked = account(ctx, name)
    assert locked.locked_until is not None
    until = locked.locked_until
    until = datetime.fromisoformat(until) if isinstance(until, str) else until  # SQLite: text
    assert timedelta(minutes=9) < until - app_clock.utcnow() <= timedelta(minutes=10)
    # Each attempt is one login_failed record against the account; the fifth tells the lock.
    rows = records_since(ctx, marker)
    assert [(r.action, r.resource, r.record_id, r.user_id, r.username) for r in rows] == \
        [("login_failed", "ab_user", str(user_id), None, name)] * 5
    assert "locked_until" in json.loads(rows[-1].changes)

    # During the lock even the right password is refused, and the page and the API say why.
    marker = last_audit_id(ctx)
    client, response = form_login(app, name, TEST_PASSWORD)
    assert "账号已被锁定" in response.get_data(as_text=True)
    assert not logged_in(client)
    response = api_login(app, name, TEST_PASSWORD)
    assert response.status_code == 401 and "账号已被锁定" in response.json["message"]
    assert "access_token" not in response.json
    rows = records_since(ctx, marker)
    assert [(r.action, json.loads(r.changes)["refused"]) for r in rows] == \
        [("login_failed", "locked"), ("login_failed", "locked")]

    # Another user behind the same address is not affected.
    client, _ = form_login(app, other, TEST_PASSWORD)
    assert logged_in(client)
    assert api_login(app, other, TEST_PASSWORD).status_code == 200

    # Nine minutes on: still locked. Past ten: the right password works, and the count restarts.
    clock.advance(minutes=9)
    assert api_login(app, name, TEST_PASSWORD).status_code == 401
    clock.advance(minutes=2)
    client, _ = form_login(app, name, TEST_PASSWORD)
    assert logged_in(client)
    assert api_login(app, name, TEST_PASSWORD).status_code == 200
    after = account(ctx, name)
    assert after.locked_until is None and after.fail_login_count == 0


def test_failures_must_be_consecutive(app, ctx, new_user):
    name = new_user()
    for _ in range(4):
        assert api_login(app, name, "Wrong-Passw0rd").status_code == 401
    assert api_login(app, name, TEST_PASSWORD).status_code == 200  # resets the count
    for _ in range(4):
        assert api_login(app, name, "Wrong-Passw0rd").status_code == 401
    assert account(ctx, name).locked_until is None
    assert api_login(app, name, TEST_PASSWORD).status_code == 200


def test_the_threshold_and_the_lock_are_configurable(app, ctx, clock, new_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    monkeypatch.setitem(app.config, "LOGIN_LOCK_MINUTES", 1)
    name = new_user()
    assert api_login(app, name, "Wrong-Passw0rd").status_code == 401
    assert account(ctx, name).locked_until is None
    assert api_login(app, name, "Wrong-Passw0rd").status_code == 401
    assert api_login(app, name, TEST_PASSWORD).status_code == 401
    clock.advance(seconds=61)
    assert api_login(app, name, TEST_PASSWORD).status_code == 200


def test_attempts_are_rate_limited_per_username_and_address(app, ctx, new_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per hour")
    name, neighbour = new_user(), new_user()
    address = "10.8.0.17"
    for _ in range(3):
        assert api_login(app, name, "Wrong-Passw0rd", address).status_code == 401
    marker = last_audit_id(ctx)
    # The fourth try from that address is refused before the password is even looked at.
    response = api_login(app, name, TEST_PASSWORD, address)
    assert response.status_code == 429 and "频繁" in response.json["message"]
    assert response.headers["Retry-After"]
    client, page = form_login(app, name, TEST_PASSWORD, address)
    assert "登录尝试过于频繁" in page.get_data(as_text=True) and not logged_in(client)
    rows = records_since(ctx, marker)
    assert [(r.action, json.loads(r.changes)["refused"]) for r in rows] == \
        [("login_failed", "throttled")] * 2
    assert account(ctx, name).fail_login_count == 3, "refused attempts test no password"
    # Other users behind that address, and the same user elsewhere, are not throttled.
    assert api_login(app, neighbour, TEST_PASSWORD, address).status_code == 200
    client, _ = form_login(app, neighbour, TEST_PASSWORD, address)
    assert logged_in(client)
    assert api_login(app, name, TEST_PASSWORD, "10.8.0.18").status_code == 200


def test_a_wrong_password_says_nothing_more(app, new_user):
    name = new_user()
    response = api_login(app, name, "Wrong-Passw0rd")
    assert response.status_code == 401 and response.json["message"] == "用户名或密码错误"
    _, page = form_login(app, name, "Wrong-Passw0rd")
    assert "用户名或密码错误" in page.get_data(as_text=True)


def test_an_administrators_password_reset_lifts_the_lock(app, ctx, as_user, new_user):
    name = new_user()
    for _ in range(5):
        assert api_login(app, name, "Wrong-Passw0rd").status_code == 401
    locked = account(ctx, name)
    assert locked.locked_until is not None
    admin = as_user("admin")
    admin.post(f"/resetpassword/form?pk={locked.id}",
               {"password": "Meadow-Tr4il-42", "conf_password": "Meadow-Tr4il-42"},
               form_url=f"/resetpassword/form?pk={locked.id}")
    after = account(ctx, name)
    assert after.locked_until is None and after.fail_login_count == 0
    assert api_login(app, name, "Meadow-Tr4il-42").status_code == 200
