"""The login rate limit is the account's, shared by every process, and never a reason to
fail (issue 16, findings 4 and 5): two processes on one Redis share one limit; a login by
e-mail counts against the same account as one by username; a Redis that does not answer
leaves logins working, limited in each process's memory, with a warning in the log; and a
username that names no account gets the same answers as one that does, its lock included."""
from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import TEST_PASSWORD
from tests.security.served import Served, free_port, redis_url
from tests.security.test_login_lockout import api_login, make_account

pytestmark = pytest.mark.db


def test_two_processes_on_redis_share_one_login_limit(database_url, app):
    url = redis_url()
    if url is None:
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    _, name = make_account(app)
    email = f"{name}@gongjian.invalid"
    config = {"RATELIMIT_STORAGE_URI": url, "LOGIN_RATE_LIMIT": "4 per hour",
              "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
              "LOGIN_MAX_FAILURES": 100}
    with Served(database_url, **config) as first, Served(database_url, **config) as second:
        statuses = []
        for i in range(8):  # by turns on the two processes, by username and by e-mail
            server = (first, second)[i % 2]
            typed = (name, email)[(i // 2) % 2]
            statuses.append(server.api_login(typed, "Wrong-Passw0rd").status_code)
        assert statuses == [401] * 4 + [429] * 4
        assert first.api_login(name, TEST_PASSWORD).status_code == 429
        assert second.api_login(email, TEST_PASSWORD).status_code == 429


def test_logins_go_on_when_the_limit_storage_is_down(database_url, app):
    _, name = make_account(app)
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = {"RATELIMIT_STORAGE_URI": down, "LOGIN_RATE_LIMIT": "3 per hour"}
    with Served(database_url, **config) as server:
        assert server.api_login(name, TEST_PASSWORD).status_code == 200
        assert server.api_login(name, "Wrong-Passw0rd").status_code == 401
        assert server.api_login(name, "Wrong-Passw0rd").status_code == 401
        # The limit still holds, in the process's own memory.
        response = server.api_login(name, TEST_PASSWORD)
        assert response.status_code == 429, response.text
        page = server_get_login(server)
        assert page.status_code == 200
    assert "rate limit storage unavailable" in server.log
    assert "Traceback" not in server.log


def server_get_login(server):
    import requests

    return requests.get(f"{server.url}/login/", timeout=30)


def answers(app, username, attempts):
    """What the API and the form say to `attempts` wrong passwords, digits masked (a lock's
    end differs by the moment it was set)."""
    from tests.test_accounts_login import form_login

    said = []
    for i in range(attempts):
        if i % 2:
            response = api_login(app, username, "Wrong-Passw0rd")
            said.append((response.status_code, response.json.get("message")))
        else:
            _, page = form_login(app, username, "Wrong-Passw0rd")
            text = page.get_data(as_text=True)
            said.append((page.status_code, re.findall(
                r"(用户名或密码错误[^<]*|[^<>]*锁定[^<]*|[^<>]*频繁[^<]*)", text)))
    return [re.sub(r"\d", "#", repr(item)) for item in said]


def test_an_unknown_username_is_answered_as_an_existing_one(app):
    _, existing = make_account(app)
    unknown = f"nobody{uuid.uuid4().hex[:8]}"
    limit = app.config["LOGIN_MAX_FAILURES"]
    seen = answers(app, existing, limit + 3)
    assert any("锁定" in line for line in seen)
    assert answers(app, unknown, limit + 3) == seen
