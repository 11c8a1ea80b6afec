"""A meeting's 纪要 printed from Debian's chromium (issue 28): an A4 PDF whose text has the record
and no URL, button label or screen-only hint."""
import subprocess

import pytest

from tests.browser.conftest import ARTIFACTS, log_in, offline_page
from tests.test_minutes_print import held_meeting

pytestmark = pytest.mark.browser


def test_the_minutes_print_to_an_a4_pdf(browser, server, ctx, tmp_path):
    meeting, body = held_meeting(ctx)
    page, outside = offline_page(browser, server)
    log_in(page, server, "shequ01")
    page.goto(f"{server}/meeting/minutes/{meeting}")
    page.screenshot(path=str(ARTIFACTS / "minutes-print.png"), full_page=True)
    pdf = tmp_path / "minutes.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True)
    page.context.close()
    assert outside == []

    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size"))
    assert size.endswith("(A4)"), size  # pdfinfo names the paper (594.96 x 841.92 pts)
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout
    assert body in words.replace(" ", "") and "议定事项" in words
    for screen_only in ("http", "/meeting/", "打印纪要", "编辑纪要", "登记参会", "Ctrl+P"):
        assert screen_only not in words, screen_only
