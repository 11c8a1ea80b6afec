"""Account security besides the lock (issue 8): the password policy on create and change, the
forced change of an administrator-set password, the idle session timeout, cookie flags and the
security headers (a CSP whose nonce every script carries)."""
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, text

from app.security import login_guard
from config import ProductionConfig
from tests.conftest import DEMO_USERS, TEST_PASSWORD
from tests.test_accounts_login import Clock, api_login, form_login, logged_in

pytestmark = pytest.mark.db
AUDITOR_ROLE = "Auditor"


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(login_guard, "now", clock)
    return clock


def uid() -> str:
    return uuid.uuid4().hex[:8]


def role_id(ctx, name):
    return ctx.execute(text("SELECT id FROM ab_role WHERE name = :n"), {"n": name}).scalar()


def user_row(ctx, username):
    return ctx.execute(text("SELECT id, password, must_change_password FROM ab_user "
                            "WHERE username = :u"), {"u": username}).one_or_none()


def add_user_form(ctx, username, password, confirm=None):
    return {"first_name": "新", "last_name": "用户", "username": username,
            "email": f"{username}@gongjian.invalid", "active": "y",
            "roles": str(role_id(ctx, AUDITOR_ROLE)), "password": password,
            "conf_password": confirm or password}


def create_by_admin(ctx, as_user, username, password):
    return as_user("admin").post("/users/add", add_user_form(ctx, username, password),
                                 form_url="/users/add", follow_redirects=True)


# --- the password policy ------------------------------------------------------------------------

@pytest.mark.parametrize("password, rule", [
    ("Sh0rt-pw", "密码长度至少为 10 位"),
    ("alllowercase123", "至少三类"),
    ("ONLYUPPER-LETTERS", "至少三类"),
    ("{name}-Passw0rd", "密码不能包含用户名"),
])
def test_a_weak_password_is_refused_with_the_rule_it_broke(ctx, as_user, password, rule):
    name = f"pol{uid()}"
    users = ctx.execute(text("SELECT count(*) FROM ab_user")).scalar()
    page = create_by_admin(ctx, as_user, name, password.format(name=name))
    assert rule in page.get_data(as_text=True)
    assert user_row(ctx, name) is None
    assert ctx.execute(text("SELECT count(*) FROM ab_user")).scalar() == users


def test_a_strong_password_is_accepted(ctx, as_user):
    name = f"pol{uid()}"
    create_by_admin(ctx, as_user, name, "Harbour-L1ght-77")
    assert user_row(ctx, name) is not None


def test_the_user_api_applies_the_same_policy(ctx, api):
    client, headers = api("admin")
    name = f"pol{uid()}"
    body = {"username": name, "first_name": "新", "last_name": "用户", "active": True,
            "email": f"{name}@gongjian.invalid", "roles": [role_id(ctx, AUDITOR_ROLE)]}
    response = client.post("/api/v1/security/users/", headers=headers,
                           json={**body, "password": "weakpassword"})
    assert response.status_code == 400
    assert "至少三类" in str(response.json)
    response = client.post("/api/v1/security/users/", headers=headers,
                           json={**body, "password": f"{name}-Passw0rd"})
    assert response.status_code == 400 and "用户名" in str(response.json)
    assert user_row(ctx, name) is None
    response = client.post("/api/v1/security/users/", headers=headers,
                           json={**body, "password": "Harbour-L1ght-77"})
    assert response.status_code == 201, response.get_data(as_text=True)


def change_own_password(browser, password, confirm=None):
    return browser.post("/resetmypassword/form",
                        {"password": password, "conf_password": confirm or password},
                        form_url="/resetmypassword/form", follow_redirects=True)


def new_account(ctx, as_user, password=TEST_PASSWORD):
    name = f"pol{uid()}"
    create_by_admin(ctx, as_user, name, password)
    assert user_row(ctx, name) is not None
    return name


def test_changing_ones_password_follows_the_policy(app, ctx, as_user):
    name = new_account(ctx, as_user)
    client, _ = form_login(app, name, TEST_PASSWORD)
    from tests.conftest import Browser

    browser = Browser(client, name)
    before = user_row(ctx, name).password
    for weak, rule in (("abc", "至少为 10 位"), ("abcdefghijk", "至少三类"),
                       (f"X{name}-9", "不能包含用户名"), (TEST_PASSWORD, "不能与当前密码相同")):
        page = change_own_password(browser, weak).get_data(as_text=True)
        assert rule in page, rule
        assert user_row(ctx, name).password == before
    change_own_password(browser, "Harbour-L1ght-77")
    assert user_row(ctx, name).password != before
    assert api_login(app, name, "Harbour-L1ght-77").status_code == 200


def test_the_demo_password_passes_the_policy(app):
    with app.test_request_context():
        login_guard.password_policy(TEST_PASSWORD)


# --- the forced change of an administrator-set password -----------------------------------------

def test_an_admin_set_password_must_be_changed_at_first_login(app, ctx, as_user, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_CHANGE_AT_FIRST_LOGIN", True)  # as in production
    name = new_account(ctx, as_user)
    assert user_row(ctx, name).must_change_password
    client, _ = form_login(app, name, TEST_PASSWORD)
    # Every page leads to the password form; the API gives no token.
    for url in ("/", "/member/list/", "/audit_log/list/"):
        response = client.get(url)
        assert response.status_code == 302 and "/resetmypassword/form" in response.location
    assert client.get("/resetmypassword/form").status_code == 200
    response = api_login(app, name, TEST_PASSWORD)
    assert response.status_code == 403 and "初始密码" in response.json["message"]

    from tests.conftest import Browser

    change_own_password(Browser(client, name), "Harbour-L1ght-77")
    assert not user_row(ctx, name).must_change_password
    assert client.get("/member/list/").status_code == 200
    assert api_login(app, name, "Harbour-L1ght-77").status_code == 200

    # An administrator resetting it sets the flag again.
    pk = user_row(ctx, name).id
    as_user("admin").post(f"/resetpassword/form?pk={pk}",
                          {"password": "Meadow-Tr4il-42", "conf_password": "Meadow-Tr4il-42"},
                          form_url=f"/resetpassword/form?pk={pk}")
    assert user_row(ctx, name).must_change_password


def test_no_forced_change_in_development_and_for_the_demo_users(ctx, as_user):
    name = new_account(ctx, as_user)
    assert not user_row(ctx, name).must_change_password
    flags = ctx.execute(text("SELECT username, must_change_password FROM ab_user "
                             "WHERE username IN :names").bindparams(
        bindparam("names", expanding=True)), {"names": DEMO_USERS}).all()
    assert len(flags) == len(DEMO_USERS) and not any(flag for _, flag in flags)
    assert ProductionConfig.PASSWORD_CHANGE_AT_FIRST_LOGIN is True


# --- idle sessions, cookies, headers -------------------------------------------------------------

def test_an_idle_session_ends(app, ctx, clock):
    client, _ = form_login(app, "shenji", TEST_PASSWORD)
    assert logged_in(client)
    clock.advance(minutes=20)
    assert logged_in(client)  # activity keeps it alive
    clock.advance(minutes=20)
    assert logged_in(client)
    marker = ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    clock.advance(minutes=31)
    response = client.get("/member/list/")
    assert response.status_code == 302 and "/login/" in response.location
    assert "超过 30 分钟未操作" in client.get("/login/").get_data(as_text=True)
    assert not logged_in(client)
    rows = ctx.execute(text("SELECT action, username FROM audit_log WHERE id > :m"),
                       {"m": marker}).all()
    assert [tuple(r) for r in rows] == [("logout", "shenji")]


def test_session_cookie_flags(app):
    _client, response = form_login(app, "shenji", TEST_PASSWORD)
    cookies = [h for h in response.history[0].headers.getlist("Set-Cookie")
               if h.startswith("session=")]
    assert cookies and all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=30)
    assert ProductionConfig.SESSION_COOKIE_SECURE is True
    assert ProductionConfig.REMEMBER_COOKIE_SECURE is True


SCRIPT = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


@pytest.mark.parametrize("username, url", [
    (None, "/login/"), ("shequ01", "/"), ("shequ01", "/member/list/"),
    ("shequ01", "/need/list/"), ("zuzhibu", "/dashboard/"), ("shenji", "/audit_log/list/"),
    ("admin", "/recycle/"), ("admin", "/users/add"),
])
def test_security_headers_and_a_nonce_on_every_script(app, as_user, username, url):
    client = as_user(username).client if username else app.test_client()
    response = client.get(url)
    assert response.status_code == 200
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src")[1].split(";")[0]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    page = response.get_data(as_text=True)
    scripts = SCRIPT.findall(page)
    assert scripts, "the page has scripts"
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag
    assert not INLINE_HANDLER.search(page), INLINE_HANDLER.search(page)
    # A new request, a new nonce.
    assert client.get(url).headers["Content-Security-Policy"] != policy
