"""Long work as jobs (issue 21), with the inline executor (no broker: `make run`, `make test`):
past its limit an export or an import becomes a job with a page, progress and a file that only
its user may download, for a while; the same job code runs on a Celery worker
(tests/test_jobs_worker.py)."""
import csv
import gc
import io
import re

import pytest
from sqlalchemy import text

from app.validators import id_number_check_char
from tests.test_data_io import body_of, upload, xlsx

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    from tests.conftest import tables_kept_by

    with tables_kept_by(app):
        yield


@pytest.fixture
def limits(app):
    """Set the inline limits for one test."""
    saved = {k: app.config[k] for k in ("EXPORT_INLINE_MAX_ROWS", "IMPORT_INLINE_MAX_ROWS")}

    def set_(export=None, import_=None):
        if export is not None:
            app.config["EXPORT_INLINE_MAX_ROWS"] = export
        if import_ is not None:
            app.config["IMPORT_INLINE_MAX_ROWS"] = import_
    yield set_
    app.config.update(saved)


def member_file(ctx, rows, region="130102", bad_row=None):
    """New members with 身份证号 of a region no other module imports (born 1940-, one a day)."""
    community = ctx.execute(text("SELECT name FROM organization WHERE type='community' ORDER BY id")).scalar()
    table = [["姓名", "身份证号", "居住社区", "党员类别", "状态"]]
    for n in range(rows):
        day, seq = divmod(n, 900)
        born = f"{1940 + day // 365}{(day % 365) // 28 + 1:02d}{(day % 28) + 1:02d}"
        body = f"{region}{born}{seq + 100:03d}"
        check = id_number_check_char(body)
        if n == bad_row:
            check = "0" if check != "0" else "1"
        table.append([f"任务党员{n}", body + check, community, "退休", "正常"])
    return table


def write(ctx, statement, params=None):
    with ctx.session() as session:
        session.execute(text(statement), params or {})
        session.commit()


def job_id_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    match = re.search(r"/jobs/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def test_an_export_past_the_limit_is_a_job_whose_file_is_the_inline_export(ctx, as_user, limits):
    browser = as_user("zuzhibu")
    url = "/member/export/csv?_oc_MemberView=name&_od_MemberView=asc"
    inline = body_of(browser.get(url))
    assert inline.count(b"\n") > 20
    limits(export=10)
    job = job_id_of(browser.get(url + "&_token=t-export-1"))
    page = browser.get(f"/jobs/{job}").get_data(as_text=True)
    assert "已完成" in page and 'aria-valuenow="100"' in page
    assert f"/jobs/{job}/download" in page
    rows = inline.count(b"\n") - 1
    assert f"{rows} / {rows}" in page
    download = browser.get(f"/jobs/{job}/download")
    assert download.status_code == 200
    assert body_of(download) == inline, "the job's file is byte for byte the inline export"
    assert "我的任务" in browser.get("/jobs/").get_data(as_text=True)
    # Excel too: a workbook of the same rows.
    from openpyxl import load_workbook

    job = job_id_of(browser.get(url.replace("csv", "xlsx") + "&_token=t-export-2"))
    book = load_workbook(io.BytesIO(body_of(browser.get(f"/jobs/{job}/download"))))
    assert book.active.max_row == rows + 1


def test_a_job_is_its_users_alone_and_its_link_expires(ctx, as_user, limits):
    limits(export=10)
    owner = as_user("zuzhibu")
    job = job_id_of(owner.get("/member/export/csv?_token=t-scope-1"))
    other = as_user("admin")
    for path in (f"/jobs/{job}", f"/jobs/{job}/download", f"/jobs/{job}/status"):
        assert other.get(path).status_code == 404
    assert owner.get(f"/jobs/{job}/status").get_json()["status"] == "已完成"
    write(ctx, "UPDATE job SET expires_on = :t WHERE id = :j", {"t": "2000-01-01 00:00:00", "j": job})
    expired = owner.get(f"/jobs/{job}/download")
    assert expired.status_code == 410
    assert "已过期" in expired.get_data(as_text=True)


def test_a_double_click_starts_one_job(ctx, as_user, limits):
    limits(export=10)
    browser = as_user("zuzhibu")
    before = ctx.execute(text("SELECT count(*) FROM job")).scalar()
    first = job_id_of(browser.get("/member/export/csv?_token=t-double"))
    second = job_id_of(browser.get("/member/export/csv?_token=t-double"))
    assert first == second
    assert ctx.execute(text("SELECT count(*) FROM job")).scalar() == before + 1
    # Another user presenting that token does not get (or see) this job.
    other = as_user("admin").get("/member/export/csv?_token=t-double")
    assert other.status_code == 302 and "/jobs/" not in other.headers["Location"]


def test_the_list_page_gives_each_export_link_its_own_token(as_user):
    page = as_user("zuzhibu").get("/member/list/").get_data(as_text=True)
    tokens = re.findall(r"/member/export/(?:csv|xlsx)\?_token=([\w-]+)", page)
    assert len(tokens) == 2 and tokens[0] != tokens[1]


def test_the_jobs_scope_is_the_users_when_it_runs(ctx, app, as_user, limits):
    """A liaison's export job has the liaison's rows only; a job of a user deactivated before
    it runs fails with a message."""
    from app import jobs
    from app.extensions import db
    from app.security.models import UserAccount

    limits(export=1)
    liaison = as_user("danwei01")
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    want = ctx.execute(text("SELECT count(*) FROM member WHERE deleted_on IS NULL AND work_unit_id=:u"),
                       {"u": unit}).scalar()
    job = job_id_of(liaison.get("/member/export/csv?_token=t-liaison"))
    body = body_of(liaison.get(f"/jobs/{job}/download")).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(body)))) - 1 == want
    with app.test_request_context():
        user = db.session.execute(db.select(UserAccount).filter_by(username="danwei02")).scalar_one()
        queued = jobs.start("export", "导出党员", user, {"fmt": "csv", "path": "/member/export/csv",
                                                     "args": [], "right": ["can_export", "member"]},
                            resource="member")
        queued_id = queued.id
    write(ctx, "UPDATE ab_user SET active = false WHERE username='danwei02'")
    try:
        with app.app_context():
            jobs.run(queued_id)
    finally:
        write(ctx, "UPDATE ab_user SET active = true WHERE username='danwei02'")
    status, message, file_id = ctx.execute(text("SELECT status, message, file_id FROM job WHERE id=:j"),
                                           {"j": queued_id}).one()
    assert (status, file_id) == ("失败", None) and "已停用" in message


def test_a_cancelled_job_does_nothing(ctx, app):
    from app import jobs
    from app.extensions import db
    from app.models.jobs import Job
    from app.security.models import UserAccount

    with app.test_request_context():
        user = db.session.execute(db.select(UserAccount).filter_by(username="zuzhibu")).scalar_one()
        job = jobs.start("purge", "清理", user)
        assert jobs.cancel(job)
        job_id = job.id
    with app.app_context():  # as an executor runs it: a session of its own
        jobs.run(job_id)
        assert db.session.get(Job, job_id).status == "已取消"


def test_an_import_past_the_limit_is_a_job_all_or_nothing(ctx, as_user, limits):
    limits(import_=100)
    browser = as_user("zuzhibu")
    before = ctx.execute(text("SELECT count(*) FROM member")).scalar()
    bad = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, 300, bad_row=150)))
    job = job_id_of(bad)
    page = browser.get(f"/jobs/{job}").get_data(as_text=True)
    assert "失败" in page and "发现 1 处错误，未导入任何数据" in page
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before
    report = body_of(browser.get(f"/jobs/{job}/download")).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(report)))
    assert lines[0][-1] == "错误" and len(lines) == 2 and "任务党员150" in lines[1]
    good = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, 300)))
    job = job_id_of(good)
    assert "导入成功：新增 300 条" in browser.get(f"/jobs/{job}").get_data(as_text=True)
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before + 300
    # A preview stays in the request, whatever its size.
    preview = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, 300)), dry_run=True)
    assert preview.status_code == 200 and "预览：将" in preview.get_data(as_text=True)


def test_the_api_answers_202_and_the_jobs_url(ctx, api, limits):
    limits(export=10)
    client, headers = api("zuzhibu")
    response = client.get("/api/v1/member/export/csv", headers=headers)
    assert response.status_code == 202
    url = response.get_json()["url"]
    state = client.get(url, headers=headers).get_json()
    assert state["status"] == "已完成" and state["total"] > 10
    download = client.get(f"{url}/download", headers=headers)
    assert download.status_code == 200 and body_of(download).startswith(b"\xef\xbb\xbf")
    other, other_headers = api("admin")
    assert other.get(url, headers=other_headers).status_code == 404
    assert other.get(url).status_code == 401


@pytest.fixture
def full_temporary_disk(monkeypatch):
    """The temporary folder's disk full: a spooled file (an Excel export's, PostgreSQL's CSV
    copy) refuses its writes with ENOSPC once past a few kilobytes, as when it rolls over to
    the disk."""
    import errno
    import tempfile

    class FullSpool(tempfile.SpooledTemporaryFile):
        written = 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", FullSpool)


# openpyxl's save does not close its ZipFile when a write fails; the export closes the spool, and
# the ZipFile's finaliser, run later by the garbage collector, then finds it closed (ValueError).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_full_temporary_disk_fails_the_job_and_offers_no_file(ctx, as_user, limits,
                                                               full_temporary_disk):
    limits(export=10)
    counts = ("SELECT (SELECT count(*) FROM stored_file), (SELECT count(*) FROM file_chunk), "
              "(SELECT count(*) FROM audit_log WHERE action = 'export')")
    before = ctx.execute(text(counts)).one()
    browser = as_user("zuzhibu")
    job = job_id_of(browser.get("/member/export/xlsx?_token=t-full-disk"))
    status, file_id, message = ctx.execute(text(
        "SELECT status, file_id, message FROM job WHERE id = :j"), {"j": job}).one()
    assert (status, file_id) == ("失败", None)
    assert message == "服务器临时磁盘空间不足，任务失败，未生成任何文件；请缩小范围或联系管理员"
    # Nothing half-written: no file, no chunk, no export recorded; no link offered.
    assert ctx.execute(text(counts)).one() == before
    page = browser.get(f"/jobs/{job}").get_data(as_text=True)
    assert message in page and f"/jobs/{job}/download" not in page
    assert browser.get(f"/jobs/{job}/status").get_json()["download"] is None
    assert browser.get(f"/jobs/{job}/download").status_code == 404
    gc.collect()  # the abandoned ZipFile's finaliser runs here, inside the filter above
