"""Shared file storage (issue 21): uploads and generated files live behind one interface, in the
database by default — so a file uploaded through one app process downloads through another with
its own instance folder — or in an S3-compatible bucket (moto's server mode stands in for one)."""
import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n" + os.urandom(700_000) + b"\n%%EOF\n"  # past two chunks


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    from tests.conftest import tables_kept_by

    with tables_kept_by(app):
        yield


def agreement_of(ctx, username="shequ01"):
    return ctx.execute(text(
        "SELECT a.id FROM agreement a JOIN ab_user u ON u.username=:u "
        "WHERE a.deleted_on IS NULL AND a.community_id = u.org_id ORDER BY a.id"),
        {"u": username}).scalar()


def upload_scan(browser, pk, data=PDF, name="协议.pdf"):
    return browser.post(f"/agreement/upload/{pk}", {"file": (io.BytesIO(data), name)},
                        form_url=f"/agreement/upload/{pk}", content_type="multipart/form-data")


SECOND_PROCESS = """
import hashlib, re, sys
from app import create_app
app = create_app("testing", SQLALCHEMY_DATABASE_URI=sys.argv[1])
client = app.test_client()
page = client.get("/login/").get_data(as_text=True)
token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
client.post("/login/", data={"username": sys.argv[2], "password": sys.argv[3], "csrf_token": token})
response = client.get(sys.argv[4])
print(response.status_code, hashlib.sha256(response.get_data()).hexdigest())
"""


def test_a_scan_uploaded_through_one_process_downloads_through_another(ctx, as_user,
                                                                       database_url, tmp_path):
    pk = agreement_of(ctx)
    browser = as_user("shequ01")
    assert upload_scan(browser, pk).status_code == 302
    file_id, size, backend = ctx.execute(text(
        "SELECT f.id, f.size, f.backend FROM agreement a JOIN stored_file f ON f.id = a.file_id "
        "WHERE a.id=:a"), {"a": pk}).one()
    assert (size, backend) == (len(PDF), "db")
    chunks = ctx.execute(text("SELECT count(*) FROM file_chunk WHERE file_id=:f"),
                         {"f": file_id}).scalar()
    assert chunks == 3, "kept in 256 KiB chunks"
    # Another process, with an instance folder of its own (no shared disk), same database.
    env = {**os.environ, "GONGJIAN_INSTANCE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SECOND_PROCESS, database_url, "shequ01",
                          TEST_PASSWORD, f"/agreement/scan/{pk}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2:] == ["200", hashlib.sha256(PDF).hexdigest()], out.stderr[-2000:]
    # Out of scope there too.
    out = subprocess.run([sys.executable, "-c", SECOND_PROCESS, database_url, "danwei03",
                          TEST_PASSWORD, f"/agreement/scan/{pk}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2] == "404", out.stderr[-2000:]


def test_a_meeting_attachment_is_stored_and_read_back(ctx, as_user):
    meeting = ctx.execute(text(
        "SELECT m.id FROM meeting m JOIN joint_body b ON b.id = m.body_id JOIN ab_user u "
        "ON u.username='shequ01' WHERE m.deleted_on IS NULL AND b.host_id = u.org_id ORDER BY m.id"
    )).scalar()
    browser = as_user("shequ01")
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    response = browser.post(f"/meeting/attach/{meeting}", {"file": (io.BytesIO(png), "照片.png")},
                            form_url=f"/meeting/show/{meeting}", content_type="multipart/form-data")
    assert response.status_code == 302
    attachment = ctx.execute(text("SELECT id FROM meeting_attachment WHERE meeting_id=:m "
                                  "ORDER BY id DESC"), {"m": meeting}).scalar()
    download = browser.get(f"/meeting/download/{attachment}")
    assert download.status_code == 200 and download.get_data() == png
    assert download.headers["Content-Type"] == "image/png"


def test_files_left_under_instance_uploads_move_into_the_storage(ctx, app, tmp_path):
    """Before issue 21 scans lived under UPLOAD_FOLDER: `flask gongjian init` moves them in."""
    from app.extensions import db
    from app.services.uploads import move_local_uploads

    pk = agreement_of(ctx, "jiedao01") or agreement_of(ctx)
    folder = tmp_path / "uploads"
    (folder / "agreements").mkdir(parents=True)
    (folder / "agreements" / f"{pk}-old.pdf").write_bytes(PDF)
    with ctx.session() as session:
        session.execute(text("UPDATE agreement SET file_path=:p, file_id=NULL, file_type='pdf', "
                             "file_name='旧.pdf' WHERE id=:a"), {"p": f"agreements/{pk}-old.pdf", "a": pk})
        session.commit()
    saved = app.config["UPLOAD_FOLDER"]
    app.config["UPLOAD_FOLDER"] = str(folder)
    try:
        with app.app_context():
            assert move_local_uploads(db.session) == 1
            assert move_local_uploads(db.session) == 0, "safe to run twice"
    finally:
        app.config["UPLOAD_FOLDER"] = saved
    path, file_id = ctx.execute(text("SELECT file_path, file_id FROM agreement WHERE id=:a"),
                                {"a": pk}).one()
    assert path is None and file_id is not None
    assert not (folder / "agreements" / f"{pk}-old.pdf").exists()


# --- the bucket backend, against moto's S3 server ---------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def bucket():
    pytest.importorskip("moto.server")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for _ in range(100):
        try:
            client.create_bucket(Bucket="gongjian")
            break
        except Exception:  # noqa: BLE001 — the server is not up yet
            time.sleep(0.1)
    yield {"url": f"s3://gongjian/files?endpoint_url={endpoint}&region=us-east-1",
           "client": client, "server": server}
    server.terminate()
    server.wait()


@pytest.fixture
def in_bucket(app, bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    saved = app.config["STORAGE_URL"]
    app.config["STORAGE_URL"] = bucket["url"]
    yield bucket
    app.config["STORAGE_URL"] = saved


def test_a_scan_goes_to_the_bucket_and_back(ctx, as_user, in_bucket):
    pk = agreement_of(ctx)
    browser = as_user("shequ01")
    assert upload_scan(browser, pk).status_code == 302
    file_id, backend = ctx.execute(text(
        "SELECT f.id, f.backend FROM agreement a JOIN stored_file f ON f.id=a.file_id WHERE a.id=:a"),
        {"a": pk}).one()
    assert backend == "s3"
    assert ctx.execute(text("SELECT count(*) FROM file_chunk WHERE file_id=:f"), {"f": file_id}).scalar() == 0
    stored = in_bucket["client"].get_object(Bucket="gongjian", Key=f"files/{file_id}")["Body"].read()
    assert stored == PDF
    assert browser.get(f"/agreement/scan/{pk}").get_data() == PDF


def test_an_unreachable_bucket_refuses_the_upload_and_keeps_the_record(ctx, app, as_user):
    pk = agreement_of(ctx)
    before = ctx.execute(text("SELECT file_id, file_name FROM agreement WHERE id=:a"), {"a": pk}).one()
    saved = app.config["STORAGE_URL"]
    app.config["STORAGE_URL"] = f"s3://gongjian?endpoint_url=http://127.0.0.1:{_free_port()}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    try:
        page = upload_scan(as_user("shequ01"), pk, name="新.pdf")
    finally:
        app.config["STORAGE_URL"] = saved
    assert page.status_code == 200
    assert "文件存储不可用" in page.get_data(as_text=True)
    assert ctx.execute(text("SELECT file_id, file_name FROM agreement WHERE id=:a"), {"a": pk}).one() == before


def test_a_purged_record_takes_its_file_and_the_scheduled_purge_is_safe_twice(ctx, app, as_user):
    """The recycle bin's purge (run by beat as a job of the system's) erases a deleted meeting
    attachment past its retention with its stored file; run again it finds nothing."""
    from app import jobs

    meeting = ctx.execute(text(
        "SELECT m.id FROM meeting m JOIN joint_body b ON b.id = m.body_id JOIN ab_user u "
        "ON u.username='shequ01' WHERE m.deleted_on IS NULL AND b.host_id = u.org_id ORDER BY m.id"
    )).scalar()
    browser = as_user("shequ01")
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    browser.post(f"/meeting/attach/{meeting}", {"file": (io.BytesIO(png), "清除.png")},
                 form_url=f"/meeting/show/{meeting}", content_type="multipart/form-data")
    attachment, file_id = ctx.execute(text(
        "SELECT id, file_id FROM meeting_attachment WHERE meeting_id=:m ORDER BY id DESC"),
        {"m": meeting}).first()
    with ctx.session() as session:
        session.execute(text("UPDATE meeting_attachment SET deleted_on = '2000-01-01 00:00:00' "
                             "WHERE id = :a"), {"a": attachment})
        session.commit()
    for run in range(2):
        with app.app_context():
            job_id = jobs.start("purge", jobs.KINDS["purge"].title, None).id
            jobs.run(job_id)
        status, message = ctx.execute(text("SELECT status, message FROM job WHERE id=:j"),
                                      {"j": job_id}).one()
        assert status == "已完成", message
    assert ctx.execute(text("SELECT count(*) FROM meeting_attachment WHERE id=:a"),
                       {"a": attachment}).scalar() == 0
    assert ctx.execute(text("SELECT count(*) FROM stored_file WHERE id=:f"), {"f": file_id}).scalar() == 0
    assert ctx.execute(text("SELECT count(*) FROM file_chunk WHERE file_id=:f"), {"f": file_id}).scalar() == 0


def test_beat_schedules_the_purge_the_meetings_and_the_star_ratings(app):
    from app.jobs import KINDS, celery

    schedule = dict(celery.conf.beat_schedule)
    # The notices' delivery (app/services/notices.py) is a task of its own, every minute.
    assert schedule.pop("deliver-notices")["task"] == "gongjian.deliver_notices"
    assert "gongjian.deliver_notices" in celery.tasks
    # The dashboard's rollups (app/rollups.py): the marked cells, every minute.
    assert schedule.pop("apply-rollups")["task"] == "gongjian.apply_rollups"
    assert "gongjian.apply_rollups" in celery.tasks
    assert {entry["task"] for entry in schedule.values()} == {"gongjian.scheduled"}
    assert {entry["args"][0] for entry in schedule.values()} == {"purge", "generate_meetings",
                                                                  "rate_stars", "notices"}
    assert all(entry["args"][0] in KINDS for entry in schedule.values())
