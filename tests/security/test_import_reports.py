"""A failed import's error report (issue 17 finding 7) keeps what the user must fix — the rows
in error, with their numbers and messages — and no 身份证号 or phone in clear; it is deleted
after its retention period (IMPORT_REPORT_RETENTION_DAYS, default 7). It lives in the shared
file storage (issue 21), not on the host's disk."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app import validators
from tests.security.support import Clients


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


def id_number(seed: int) -> str:
    body = f"3201021985{(seed % 12) + 1:02d}{(seed % 28) + 1:02d}{seed % 1000:03d}"
    return body + validators.id_number_check_char(body)


def member_csv(app, ctx, rows) -> bytes:
    from app.imports import Importer

    view = next(v for v in app.appbuilder.baseviews
                if getattr(v, "class_permission_name", None) == "member"
                and getattr(v, "import_columns", None))
    community = ctx.execute(text("SELECT o.name FROM organization o JOIN ab_user u "
                                 "ON u.org_id = o.id WHERE u.username = 'shequ01'")).scalar()
    with app.app_context():
        headers = [c.header for c in Importer(view).columns]
    lines = [",".join(headers)]
    for name, number, phone in rows:
        values = {"姓名": name, "身份证号": number, "手机号": phone, "居住社区": community}
        lines.append(",".join(values.get(h, "") for h in headers))
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def upload(clients, username, data):
    browser = clients.browser(username)
    return browser.client.post("/member/import/", data={
        "csrf_token": clients.csrf(username), "dry_run": "y",
        "file": (io.BytesIO(data), "members.csv")}, content_type="multipart/form-data")


def newest_report(ctx) -> int:
    return ctx.execute(text("SELECT max(id) FROM stored_file WHERE name = 'errors.csv'")).scalar()


def age(ctx, report: int, days: int) -> None:
    with ctx.session() as session:
        session.execute(text("UPDATE stored_file SET created_on = :t WHERE id = :r"),
                        {"t": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days),
                         "r": report})
        session.commit()


def test_the_report_keeps_only_the_rows_in_error_and_masks_personal_data(app, ctx, clients):
    good, bad_check = id_number(11), id_number(12)[:-1] + "0"
    if bad_check == id_number(12):
        bad_check = id_number(12)[:-1] + "1"
    data = member_csv(app, ctx, [("正确行甲", good, "13911110001"),
                                 ("校验错乙", bad_check, "13911110002"),
                                 ("正确行丙", id_number(13), "13911110003"),
                                 ("", id_number(14), "13911110004")])
    response = upload(clients, "shequ01", data)
    assert response.status_code == 200 and "未导入任何数据" in response.get_data(as_text=True)
    report = clients.browser("shequ01").get("/member/import/report")
    assert report.status_code == 200
    body = report.get_data().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(body)))
    # the rows in error, by number
    assert [line[-1].split("：")[0] for line in lines[1:]] == ["第 3 行", "第 5 行"]
    assert "正确行甲" not in body and "正确行丙" not in body
    for number, phone in ((good, "13911110001"), (bad_check, "13911110002"),
                          (id_number(14), "13911110004")):
        assert number not in body and phone not in body
    assert validators.mask_id_number(bad_check) in body  # enough to find the row
    assert "校验位" in lines[1][-1]
    chunks = b"".join(bytes(c) for c in ctx.execute(text(
        "SELECT data FROM file_chunk WHERE file_id = :r ORDER BY seq"),
        {"r": newest_report(ctx)}).scalars())
    assert bad_check.encode() not in chunks and validators.mask_id_number(bad_check).encode() in chunks


def test_a_report_past_its_retention_is_deleted_and_not_served(app, ctx, clients):
    data = member_csv(app, ctx, [("保留期测试", "123", "")])
    assert upload(clients, "shequ01", data).status_code == 200
    browser = clients.browser("shequ01")
    assert browser.get("/member/import/report").status_code == 200
    age(ctx, newest_report(ctx), 8)
    assert browser.get("/member/import/report").status_code == 404
    # The period is configurable: at 10 days, an 8-day-old report stays.
    assert upload(clients, "shequ01", data).status_code == 200
    age(ctx, newest_report(ctx), 8)
    app.config["IMPORT_REPORT_RETENTION_DAYS"] = 10
    try:
        assert browser.get("/member/import/report").status_code == 200
    finally:
        app.config["IMPORT_REPORT_RETENTION_DAYS"] = 7
