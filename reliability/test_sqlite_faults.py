"""Faults of the embedded database: the SQLite file full (`PRAGMA max_page_count`) and the file
read-only. A user who writes is told so in Chinese (a page or API JSON, 503), never a 500 or a
traceback; nothing is half-written; the file passes `PRAGMA integrity_check`; and once the fault
is gone the same writes succeed.

    .venv/bin/python -m pytest -q reliability/test_sqlite_faults.py
"""
from __future__ import annotations

import io
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import event

from app.errors import DATABASE_FULL, DATABASE_READ_ONLY
from tests.conftest import TEST_PASSWORD, Browser, api_token, login

BIG = "楼道照明损坏，需要维修。" * 2000  # ~24 kB: needs new pages whatever the free space


def _seeded_app(url: str):
    from flask_migrate import upgrade

    from app import create_app
    from app.cli import sync_roles
    from app.extensions import db
    from app.services.defaults import ensure_dictionary
    from seed.demo import seed_demo

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade(revision="heads")
        sync_roles()
        ensure_dictionary(db.session)
        seed_demo(scale="test", password=TEST_PASSWORD, echo=lambda *a: None)
        db.session.remove()
    return app


@pytest.fixture(scope="module")
def database():
    folder = Path(tempfile.mkdtemp(prefix="gongjian-faults-"))
    path = folder / "gongjian.db"
    app = _seeded_app(f"sqlite:///{path}")
    yield app, path
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()


def counts(path: Path) -> dict:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("need", "member", "audit_log")}


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def community_and_category(path: Path) -> tuple[int, int, str]:
    with sqlite3.connect(path) as conn:
        community, name = conn.execute(
            "SELECT o.id, o.name FROM ab_user u JOIN organization o ON o.id = u.org_id "
            "WHERE u.username = 'shequ01'").fetchone()
        category = conn.execute(
            "SELECT min(id) FROM dictionary WHERE kind = 'need_category'").fetchone()[0]
    return community, category, name


def need_file(community_name: str, rows: int = 300) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["所在社区", "需求类别", "需求标题", "需求内容", "紧急程度"])
    for n in range(rows):
        sheet.append([community_name, "设施维修", f"导入需求{n}", BIG[:300], "一般"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def told(response, message: str) -> None:
    """A clear Chinese answer, not a 500 and not a traceback."""
    body = response.get_data(as_text=True)
    assert response.status_code != 500, body[:500]
    assert "Traceback" not in body and "OperationalError" not in body, body[:500]
    assert message in body or message in (response.get_json(silent=True) or {}).get("message", ""), \
        (response.status_code, body[:500])


def write_attempts(app, path: Path, browser: Browser, headers: dict) -> dict:
    """The writes a user makes: an API post, the add form, a transition, an import."""
    community, category, community_name = community_and_category(path)
    client = app.test_client()
    api_post = client.post("/api/v1/need/", headers=headers, json={
        "community": community, "category": category, "title": "满库时提交的需求",
        "content": BIG, "urgency": "一般", "source": "社区"})
    form_post = browser.post("/need/add", {
        "source": "居民", "community": str(community), "category": str(category),
        "title": "满库时表单提交的需求", "content": BIG, "urgency": "一般"}, form_url="/need/add",
        follow_redirects=True)
    with sqlite3.connect(path) as conn:
        pk, status = conn.execute(
            "SELECT id, status FROM need WHERE status IN ('已受理', '待受理') AND community_id = ? "
            "ORDER BY status = '已受理' DESC, id LIMIT 1", (community,)).fetchone()
    if status == "已受理":
        move = client.post(f"/api/v1/need/{pk}/transition/dispatch", headers=headers, json={
            "assigned_unit": _liaison_unit(path), "note": BIG})
    else:
        move = client.post(f"/api/v1/need/{pk}/transition/accept", headers=headers)
    upload = browser.post("/need/import/", {"file": (io.BytesIO(need_file(community_name)),
                                                     "需求.xlsx")},
                          form_url="/need/import/", content_type="multipart/form-data")
    return {"api_post": api_post, "form_post": form_post, "transition": move, "import": upload}


def _liaison_unit(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT unit_id FROM ab_user WHERE username = 'danwei01'").fetchone()[0]


def test_a_full_database_refuses_writes_clearly_and_stays_whole(database):
    app, path = database
    from app.extensions import db

    browser = login(app, "shequ01")
    headers = api_token(app, "shequ01")
    with sqlite3.connect(path) as conn:  # no free pages left to reuse: any growth is refused
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    with app.app_context():
        limit = {"pages": None}

        @event.listens_for(db.engine, "connect")
        def _cap(dbapi_connection, record):
            if limit["pages"]:
                dbapi_connection.execute(f"PRAGMA max_page_count = {limit['pages']}")

        db.engine.dispose()
    with sqlite3.connect(path) as conn:
        limit["pages"] = conn.execute("PRAGMA page_count").fetchone()[0]
    before = counts(path)

    responses = write_attempts(app, path, browser, headers)

    for response in responses.values():
        told(response, DATABASE_FULL)
    assert responses["api_post"].status_code == 503
    assert counts(path) == before, "nothing half-written"
    assert integrity(path) == "ok"

    limit["pages"] = None  # space freed: the same writes go through
    with app.app_context():
        db.engine.dispose()
    again = write_attempts(app, path, browser, headers)
    assert again["api_post"].status_code == 201, again["api_post"].get_json()
    assert "添加" in again["form_post"].get_data(as_text=True) or \
        again["form_post"].status_code == 200
    assert again["transition"].status_code == 200, again["transition"].get_json()
    assert "导入成功" in again["import"].get_data(as_text=True)
    assert counts(path)["need"] == before["need"] + 2 + 300
    assert integrity(path) == "ok"


def test_a_read_only_database_refuses_writes_clearly_and_stays_whole(database):
    app, path = database
    from app.extensions import db

    browser = login(app, "shequ01")
    headers = api_token(app, "shequ01")
    read_only = {"on": True}
    with app.app_context():
        @event.listens_for(db.engine, "do_connect")
        def _open_read_only(dialect, record, cargs, cparams):
            if read_only["on"]:  # the file itself opened read-only, as a read-only mount would
                cargs[:] = [f"file:{path}?mode=ro"]
                cparams["uri"] = True

        db.engine.dispose()
    before = counts(path)

    assert browser.get("/need/list/").status_code == 200, "reading still works"
    responses = write_attempts(app, path, browser, headers)
    for response in responses.values():
        told(response, DATABASE_READ_ONLY)
    assert responses["api_post"].status_code == 503

    # Logging in writes (last login, audit record): whatever it answers, never a 500.
    fresh = app.test_client()
    page = fresh.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    told(fresh.post("/login/", data={"username": "danwei01", "password": TEST_PASSWORD,
                                     "csrf_token": token}), "")
    told(fresh.post("/api/v1/security/login", json={
        "username": "danwei01", "password": TEST_PASSWORD, "provider": "db"}), "")

    assert counts(path) == before
    assert integrity(path) == "ok"
    read_only["on"] = False
    with app.app_context():
        db.engine.dispose()
