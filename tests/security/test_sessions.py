"""Sessions and tokens that end (issue 16, finding 2): a password change ends the user's old
access token, refresh token and session cookie — on another process too; logout ends its own
session only (a copied cookie with it); refresh tokens rotate and live at most a week; the
failed-login lockout refuses new logins but ends no session."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from flask_jwt_extended import decode_token
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, login, logout
from tests.security.served import Served
from tests.security.test_login_lockout import api_login, make_account

pytestmark = pytest.mark.db

NEW_PASSWORD = "Meadow-Tr4il-42"
ENDED = "登录已失效"


def tokens(app, username, password=TEST_PASSWORD) -> tuple[str, str]:
    response = app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db", "refresh": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["access_token"], response.json["refresh_token"]


def cookie_of(browser) -> str:
    return browser.client.get_cookie("session").value


def copy_of(app, browser):
    """Another client holding the same session cookie (as a thief would)."""
    client = app.test_client()
    client.set_cookie("session", cookie_of(browser))
    return client


def served_by_cookie(server, cookie):
    return requests.get(f"{server.url}/member/list/", cookies={"session": cookie},
                        allow_redirects=False, timeout=30)


def served_by_token(server, token):
    return requests.get(f"{server.url}/api/v1/need/?q=(page_size:1)", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def refreshed(server_url, refresh_token):
    return requests.post(f"{server_url}/api/v1/security/refresh", timeout=30,
                         headers={"Authorization": f"Bearer {refresh_token}"})


def admin_resets(app, user_id, password=NEW_PASSWORD):
    admin = login(app, "admin")
    response = admin.post(f"/resetpassword/form?pk={user_id}",
                          {"password": password, "conf_password": password},
                          form_url=f"/resetpassword/form?pk={user_id}")
    assert response.status_code == 302, response.get_data(as_text=True)


def test_a_password_change_ends_old_tokens_and_cookies_on_another_process(app, database_url):
    user_id, name = make_account(app)
    browser = login(app, name)
    cookie = cookie_of(browser)
    access, refresh = tokens(app, name)
    with Served(database_url) as second:
        assert served_by_cookie(second, cookie).status_code == 200
        assert served_by_token(second, access).status_code == 200

        admin_resets(app, user_id)

        page = served_by_cookie(second, cookie)
        assert page.status_code == 302 and "/login/" in page.headers["Location"]
        answer = served_by_token(second, access)
        assert answer.status_code == 401 and ENDED in answer.json()["message"]
        answer = refreshed(second.url, refresh)
        assert answer.status_code == 401 and ENDED in answer.json()["message"]
        # The new password works there, and its session is a session there.
        fresh, _ = tokens(app, name, NEW_PASSWORD)
        assert served_by_token(second, fresh).status_code == 200
    # Here too: the browser is sent to the login page, which says why.
    response = browser.get("/member/list/")
    assert response.status_code == 302 and "/login/" in response.location
    assert ENDED in browser.get("/login/").get_data(as_text=True)


def test_ones_own_password_change_keeps_that_session_and_ends_the_others(app):
    from tests.test_accounts_login import logged_in

    _, name = make_account(app)
    changer, other = login(app, name), login(app, name)
    stolen = copy_of(app, changer)
    access, _ = tokens(app, name)
    response = changer.post("/resetmypassword/form",
                            {"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert logged_in(changer.client)
    assert not logged_in(other.client)
    assert not logged_in(stolen), "a copy of the changing session's old cookie is dead"
    answer = app.test_client().get("/api/v1/need/", headers={"Authorization": f"Bearer {access}"})
    assert answer.status_code == 401


def test_logout_ends_its_own_session_only(app):
    from tests.test_accounts_login import logged_in

    _, name = make_account(app)
    first, second = login(app, name), login(app, name)
    stolen = copy_of(app, first)
    assert logged_in(stolen)
    # A link (or another site's <img src=/logout/>) logs nobody out.
    first.get("/logout/")
    assert logged_in(first.client)
    assert logout(first.client).status_code == 302
    assert not logged_in(first.client)
    assert not logged_in(stolen), "a copied cookie dies with the logout"
    assert logged_in(second.client), "the user's other session lives on"
    # Without the CSRF token, a POST logs nobody out either.
    assert second.client.post("/logout/").status_code == 400
    assert logged_in(second.client)


def test_the_menu_logs_out_with_a_form(app):
    page = login(app, "shenji").get("/member/list/").get_data(as_text=True)
    assert 'action="/logout/"' in page and 'method="post"' in page
    assert 'href="/logout/"' not in page


def test_refresh_tokens_rotate_and_live_a_week(app):
    _, name = make_account(app)
    _, refresh = tokens(app, name)
    with app.app_context():
        claims = decode_token(refresh)
    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(days=7)
    client = app.test_client()
    first = client.post("/api/v1/security/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert first.status_code == 200
    assert first.json["access_token"] and first.json["refresh_token"] != refresh
    again = client.post("/api/v1/security/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert again.status_code == 401 and ENDED in again.json["message"]
    nxt = first.json["refresh_token"]
    assert client.post("/api/v1/security/refresh",
                       headers={"Authorization": f"Bearer {nxt}"}).status_code == 200


def test_the_failed_login_lock_ends_no_session(app, ctx):
    from tests.test_accounts_login import logged_in

    _, name = make_account(app)
    browser = login(app, name)
    access, _ = tokens(app, name)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        api_login(app, name, "Wrong-Passw0rd")
    assert ctx.execute(text("SELECT locked_until FROM ab_user WHERE username = :u"),
                       {"u": name}).scalar() is not None
    assert api_login(app, name, TEST_PASSWORD).status_code == 401  # new logins are refused
    assert logged_in(browser.client)
    assert app.test_client().get("/api/v1/need/", headers={
        "Authorization": f"Bearer {access}"}).status_code == 200


def test_deactivation_ends_sessions_and_tokens(app, ctx):
    from app.security.models import UserAccount
    from tests.test_accounts_login import logged_in

    user_id, name = make_account(app)
    browser = login(app, name)
    access, _ = tokens(app, name)
    with ctx.session() as session:
        session.get(UserAccount, user_id).active = False
        session.commit()
    assert not logged_in(browser.client)
    response = app.test_client().get("/api/v1/need/", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 401
