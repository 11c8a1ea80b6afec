"""A meeting's files: the allowed types are checked by extension and by content, the size is
limited, a refusal is told in Chinese with nothing stored, and a file is downloaded only by
those who may read its meeting."""
import io
import zipfile

import pytest
from sqlalchemy import text

from tests.test_meetings_support import body_id, count, make_meeting, page_says

pytestmark = pytest.mark.db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def docx() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return data.getvalue()


@pytest.fixture
def uploads(app, tmp_path):
    """Files go to a folder of the test's own."""
    before = app.config.get("UPLOAD_FOLDER")
    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    yield tmp_path / "meetings"
    app.config["UPLOAD_FOLDER"] = before


def upload(browser, meeting, name, content):
    return browser.client.post(
        f"/meeting/attach/{meeting}", follow_redirects=True, content_type="multipart/form-data",
        data={"csrf_token": browser.csrf(f"/meeting/show/{meeting}"),
              "file": (io.BytesIO(content), name)})


def stored(folder) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_allowed_files_are_stored_and_listed(ctx, as_user, uploads):
    meeting = make_meeting(ctx, body_id(ctx))
    browser = as_user("shequ01")
    for name, content in (("会议纪要（签字版）.pdf", PDF), ("现场照片.png", PNG), ("议程.docx", docx())):
        page_says(upload(browser, meeting, name, content), "附件已上传")
    rows = ctx.execute(text("SELECT a.filename, a.size, f.size AS stored_size FROM meeting_attachment a "
                            "JOIN stored_file f ON f.id = a.file_id "
                            "WHERE a.meeting_id = :m ORDER BY a.id"), {"m": meeting}).all()
    assert [r.filename for r in rows] == ["会议纪要（签字版）.pdf", "现场照片.png", "议程.docx"]
    assert [r.size for r in rows] == [r.stored_size for r in rows] == [len(PDF), len(PNG), len(docx())]
    # In the shared storage (issue 21), not on this host's disk.
    assert stored(uploads) == []
    page = browser.get(f"/meeting/show/{meeting}").get_data(as_text=True)
    assert "会议纪要（签字版）.pdf" in page and "现场照片.png" in page


@pytest.mark.parametrize("name, content, message", [
    ("纪要.pdf", b"just text, not a PDF", "文件内容与扩展名 .pdf 不符"),
    ("照片.jpg", PNG, "文件内容与扩展名 .jpg 不符"),
    ("纪要.docx", b"PK\x03\x04 not really a zip", "文件内容与扩展名 .docx 不符"),
    ("表格.xlsx", docx(), "文件内容与扩展名 .xlsx 不符"),
    ("病毒.exe", b"MZ\x90\x00", "只能上传 PDF、Word（.docx）、Excel（.xlsx）、JPG 或 PNG 文件"),
    ("没有扩展名", PDF, "只能上传"),
    ("空文件.pdf", b"", "文件是空的"),
])
def test_wrong_files_are_refused_and_nothing_is_stored(ctx, as_user, uploads, name, content,
                                                       message):
    meeting = make_meeting(ctx, body_id(ctx))
    before = count(ctx, "meeting_attachment"), count(ctx, "stored_file")
    page_says(upload(as_user("shequ01"), meeting, name, content), message)
    assert (count(ctx, "meeting_attachment"), count(ctx, "stored_file")) == before
    assert stored(uploads) == []


def test_a_file_over_the_size_limit_is_refused(app, ctx, as_user, uploads):
    meeting = make_meeting(ctx, body_id(ctx))
    before = count(ctx, "meeting_attachment")
    limit = app.config["UPLOAD_MAX_BYTES"]
    app.config["UPLOAD_MAX_BYTES"] = 1024 * 1024
    try:
        page_says(upload(as_user("shequ01"), meeting, "大文件.pdf", PDF + b"0" * (1024 * 1024)),
                  "文件超过 1 MB 的大小限制")
    finally:
        app.config["UPLOAD_MAX_BYTES"] = limit
    assert count(ctx, "meeting_attachment") == before and stored(uploads) == []


def test_downloads_follow_the_meetings_scope(ctx, as_user, uploads):
    meeting = make_meeting(ctx, body_id(ctx))
    page_says(upload(as_user("shequ01"), meeting, "纪要.pdf", PDF), "附件已上传")
    pk = ctx.execute(text("SELECT max(id) FROM meeting_attachment")).scalar()
    for username in ("shequ01", "danwei01", "shenji"):  # the host, a member unit, the auditor
        response = as_user(username).get(f"/meeting/download/{pk}")
        assert response.status_code == 200, username
        assert response.data == PDF
        assert "attachment" in response.headers["Content-Disposition"]
    assert as_user("danwei03").get(f"/meeting/download/{pk}").status_code == 404
    assert as_user("dangyuan01").get(f"/meeting/download/{pk}").status_code == 403
    # A liaison may read the files of its body's meetings, not add or remove them.
    liaison = as_user("danwei01")
    before = count(ctx, "meeting_attachment")
    response = liaison.client.post(f"/meeting/attach/{meeting}", content_type="multipart/form-data",
                                   data={"csrf_token": liaison.csrf("/supervision_note/add"),
                                         "file": (io.BytesIO(PDF), "x.pdf")})
    assert response.status_code == 403
    assert liaison.post(f"/meeting/detach/{meeting}/{pk}", {},
                        form_url="/supervision_note/add").status_code == 403
    assert count(ctx, "meeting_attachment") == before
    # The host removes it (to the recycle bin): it is no longer served.
    host = as_user("shequ01")
    assert host.post(f"/meeting/detach/{meeting}/{pk}", {},
                     form_url=f"/meeting/show/{meeting}").status_code == 302
    assert host.get(f"/meeting/download/{pk}").status_code == 404
    assert count(ctx, "meeting_attachment", "id = :i AND deleted_on IS NOT NULL", i=pk) == 1
