"""月汇报 as PDF, where .ci/run's browser stage has LibreOffice (Writer) and the CJK fonts: the
report's .docx converts to a PDF (`soffice`, a profile per call), whose pages render to PNG
(`pdftoppm`) and whose text carries the community's name (`pdftotext`) — Chinese glyphs, not
boxes. The print page, printed by chromium, is the other PDF route; it is checked the same way.
The PNGs go to the git-ignored artifacts/ folder."""
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from app import clock
from tests.browser.conftest import ARTIFACTS, log_in, offline_page
from tests.conftest import tables_kept_by

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def tools():
    missing = [t for t in ("soffice", "pdftoppm", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the browser stage needs {', '.join(missing)} "
                    "(apt-get install libreoffice-writer-nogui poppler-utils fonts-noto-cjk)")


def a_report(ctx, as_user):
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    name = ctx.execute(text("SELECT name FROM organization WHERE id = :i"), {"i": community}).scalar()
    today = clock.today()
    year, month = (today.year, today.month - 2) if today.month > 2 else (today.year - 1, today.month + 10)
    browser = as_user("shequ01")
    response = browser.post("/work_report/add", {"org": community, "month": f"{year}-{month:02d}",
                                                 "summary": "社区联合驻区单位开展便民服务。"},
                            form_url="/work_report/add")
    assert response.status_code == 302
    pk = ctx.execute(text("SELECT id FROM work_report WHERE org_id = :o AND month = :m "
                          "AND deleted_on IS NULL"),
                     {"o": community, "m": f"{year}-{month:02d}"}).scalar()
    return browser, pk, name


def check_pdf(pdf: Path, name: str, stem: str) -> None:
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(ARTIFACTS / stem)],
                   check=True, timeout=120)
    pages = sorted(ARTIFACTS.glob(f"{stem}-*.png"))
    assert pages and all(p.stat().st_size > 1000 for p in pages)
    said = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout
    assert name in said, said[:500]
    assert "月汇报" in said


def test_the_docx_converts_to_a_pdf_with_chinese_text(ctx, as_user):
    tools()
    ARTIFACTS.mkdir(exist_ok=True)
    browser, pk, name = a_report(ctx, as_user)
    response = browser.post(f"/work_report/document/{pk}/pdf", {},
                            form_url=f"/work_report/show/{pk}")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert response.headers["Location"].endswith("/download"), response.headers["Location"]
    download = browser.get(response.headers["Location"])
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    pdf = ARTIFACTS / "work-report.pdf"
    pdf.write_bytes(download.get_data())
    check_pdf(pdf, name, "work-report-docx")


def test_the_print_page_prints_as_a_pdf(browser, server, ctx, as_user):
    tools()
    _, pk, name = a_report(ctx, as_user)
    page, outside = offline_page(browser, server)
    log_in(page, server, "shequ01")
    page.goto(f"{server}/work_report/print/{pk}")
    assert name in page.inner_text("h1")
    pdf = ARTIFACTS / "work-report-print.pdf"
    page.pdf(path=str(pdf), format="A4")
    page.context.close()
    assert not outside, outside
    check_pdf(pdf, name, "work-report-print")
