"""Lists in the browser (issue 28): at desktop width a date and a status read on one line in
every list cell — a narrow column broke them as "2025-12-/08" and "已办/结"."""
from urllib.parse import quote

import pytest

from tests.browser.conftest import ARTIFACTS, log_in, offline_page

pytestmark = pytest.mark.browser

SHORT = (r"^(\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?|待办|办理中|已办结|计划中|已召开|已取消|待受理|已受理"
         r"|已派单|已回访|已驳回)$")
# The lines each such cell's text takes: the distinct tops of its text's boxes.
LINES = """(pattern) => {
  const short = new RegExp(pattern);
  return [...document.querySelectorAll('table.table td')]
    .filter(td => short.test(td.innerText.trim()))
    .map(td => {
      const range = document.createRange();
      range.selectNodeContents(td);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                                       .map(r => Math.round(r.top)));
      return [td.innerText.trim(), tops.size];
    });
}"""
LISTS = ["/meeting/list/", "/resolution/list/", f"/resolution/list/?_flt_3_status={quote('已办结')}",
         "/need/list/", "/agreement/list/", "/service_record/list/"]


@pytest.mark.parametrize("width", [1280, 1440])
def test_dates_and_statuses_read_on_one_line(server, browser, width):
    page, outside = offline_page(browser, server, viewport={"width": width, "height": 900})
    log_in(page, server, "shequ01")
    seen, broken = set(), []
    for url in LISTS:
        response = page.goto(f"{server}{url}")
        page.wait_for_load_state("networkidle")
        assert response.status == 200, url
        cells = page.evaluate(LINES, SHORT)
        seen |= {text for text, _ in cells}
        broken += [(url, text, lines) for text, lines in cells if lines != 1]
        if "meeting" in url:
            page.screenshot(path=str(ARTIFACTS / f"issue28-list-cells-{width}.png"))
    assert not broken, broken
    assert "已办结" in seen and any(text[:4].isdigit() and len(text) == 10 for text in seen), seen
    assert outside == []
    page.context.close()
