"""The lockout holds under concurrency (issue 16, finding 1): parallel wrong passwords, each on
its own client and database connection, are counted one by one before any password is looked
at, so the account locks after LOGIN_MAX_FAILURES of them however many arrive at once; every
attempt is on the audit trail; an attempt that cannot be counted is refused unchecked."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import clock
from app.security import login_guard
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.db

PARALLEL = 50


def make_account(app, role="Auditor") -> tuple[int, str]:
    from app.extensions import appbuilder, db

    name = f"lock{uuid.uuid4().hex[:8]}"
    with app.app_context():
        user = appbuilder.sm.add_user(name, "测试", "用户", f"{name}@gongjian.invalid",
                                      appbuilder.sm.find_role(role), password=TEST_PASSWORD)
        user_id = user.id
        db.session.remove()
    return user_id, name


def api_login(app, username, password):
    return app.test_client().post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})


def in_parallel(count, work):
    """Run `work(i)` on `count` threads released together; their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 — reported by the assertion below
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_fifty_parallel_wrong_passwords_lock_the_account_and_are_all_audited(app, ctx):
    user_id, name = make_account(app)
    marker = ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()

    responses = in_parallel(PARALLEL, lambda i: api_login(app, name, f"Wrong-Passw0rd{i}"))

    statuses = [getattr(r, "status_code", r) for r in responses]
    assert all(s == 401 for s in statuses), statuses
    row = ctx.execute(text("SELECT fail_login_count, locked_until FROM ab_user WHERE id = :i"),
                      {"i": user_id}).one()
    assert row.locked_until is not None, f"not locked after {PARALLEL} parallel failures"
    # (attempts that arrive once the lock is written are refused before they are counted)
    assert row.fail_login_count >= app.config["LOGIN_MAX_FAILURES"]
    records = ctx.execute(text(
        "SELECT action, record_id, changes FROM audit_log WHERE id > :m AND username = :u"),
        {"m": marker, "u": name}).all()
    assert len(records) == PARALLEL
    assert {(r.action, r.record_id) for r in records} == {("login_failed", str(user_id))}
    # Only the first LOGIN_MAX_FAILURES were checked; the others were refused as locked.
    refused = sum('"refused": "locked"' in (r.changes or "") for r in records)
    assert refused == PARALLEL - app.config["LOGIN_MAX_FAILURES"]
    # The right password is refused during the lock ...
    response = api_login(app, name, TEST_PASSWORD)
    assert response.status_code == 401 and "锁定" in response.json["message"]


def test_the_right_password_works_again_when_the_lock_runs_out(app, ctx, monkeypatch):
    user_id, name = make_account(app)
    in_parallel(10, lambda i: api_login(app, name, "Wrong-Passw0rd"))
    assert api_login(app, name, TEST_PASSWORD).status_code == 401
    later = clock.utcnow() + timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"], seconds=5)
    monkeypatch.setattr(login_guard, "now", lambda: later)
    assert api_login(app, name, TEST_PASSWORD).status_code == 200
    row = ctx.execute(text("SELECT fail_login_count, locked_until FROM ab_user WHERE id = :i"),
                      {"i": user_id}).one()
    assert row.fail_login_count == 0 and row.locked_until is None


def test_an_attempt_that_cannot_be_counted_is_refused_without_a_password_check(
        app, ctx, monkeypatch):
    _, name = make_account(app)
    checked = []

    def unwritable(session, user_id, moment):
        raise OperationalError("UPDATE ab_user", {}, Exception("database is locked"))

    def spy(self, username, password):
        checked.append(username)

    from flask_appbuilder.security.sqla.manager import SecurityManager as Fab

    monkeypatch.setattr(login_guard, "count_attempt", unwritable)
    monkeypatch.setattr(Fab, "auth_user_db", spy)
    response = api_login(app, name, TEST_PASSWORD)
    assert response.status_code == 503
    assert response.json["message"] == "系统繁忙，请稍后再试"
    assert checked == []
    record = ctx.execute(text("SELECT action, changes FROM audit_log WHERE username = :u"),
                         {"u": name}).one()
    assert record.action == "login_failed" and '"busy"' in record.changes


def test_parallel_right_passwords_all_get_in(app, ctx):
    """Counted before the check, parallel logins with the right password are not taken for
    guesses: those counted beyond the limit wait for the earlier ones, whose success resets
    the count."""
    user_id, name = make_account(app)
    count = 12
    responses = in_parallel(count, lambda i: api_login(app, name, TEST_PASSWORD))
    assert [getattr(r, "status_code", r) for r in responses] == [200] * count
    row = ctx.execute(text("SELECT fail_login_count, locked_until FROM ab_user WHERE id = :i"),
                      {"i": user_id}).one()
    assert row.locked_until is None
