"""Issue 27 in the browser: a named set of pages per role (home, a list, a show page and, where
the role has one, the dashboard) at 1440 and 390 px — no console error, the menu on one line at
1440 px; screenshots in artifacts/."""
import pytest

from tests.browser.conftest import ARTIFACTS, log_in, offline_page

pytestmark = pytest.mark.browser

PAGES = {
    "admin": ["/", "/member/list/", "/member/show/first", "/dashboard/"],
    "shequ01": ["/", "/need/list/", "/need/show/first", "/dashboard/"],
    "danwei01": ["/", "/member/list/", "/need/show/first", "/dashboard/"],
    "dangyuan01": ["/", "/service_record/list/", "/service_post/show/first"],
    "shenji": ["/", "/audit_log/list/", "/unit/show/first", "/dashboard/"],
}
WIDTHS = (1440, 390)

# The menu bar's items all on the first row, beside the brand and the right-hand items.
ONE_LINE = """() => {
  const items = [...document.querySelectorAll('.navbar .navbar-nav > li')]
    .filter(li => li.offsetParent !== null);
  const tops = new Set(items.map(li => Math.round(li.getBoundingClientRect().top)));
  return {rows: tops.size, items: items.length,
          height: document.querySelector('.navbar').getBoundingClientRect().height};
}"""


def _first_show(page, server, path):
    """`/x/show/first`: the first row's show page, from the list."""
    base = path.split("/show/")[0]
    page.goto(f"{server}{base}/list/")
    link = page.locator(f"a[href^='{base}/show/']").first
    return link.get_attribute("href")


@pytest.mark.parametrize("username", list(PAGES))
def test_pages_at_desktop_and_phone_widths(server, browser, username):
    for width in WIDTHS:
        page, outside = offline_page(browser, server,
                                     viewport={"width": width, "height": 900})
        errors = []
        page.on("console", lambda message, errors=errors: message.type == "error"
                and errors.append(message.text))
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        log_in(page, server, username)
        for path in PAGES[username]:
            url = _first_show(page, server, path) if path.endswith("/first") else path
            assert url, f"{username}: no row to show for {path}"
            response = page.goto(f"{server}{url}")
            page.wait_for_load_state("networkidle")
            assert response.status == 200, f"{username} {url}: {response.status}"
            name = f"issue27-{username}-{width}-{url.strip('/').replace('/', '-') or 'home'}.png"
            page.screenshot(path=str(ARTIFACTS / name), full_page=False)
            if width == 1440:
                bar = page.evaluate(ONE_LINE)
                assert bar["rows"] == 1 and bar["height"] < 60, f"{username} {url}: {bar}"
        assert errors == [], f"{username} at {width}px: {errors}"
        assert outside == []
        page.context.close()
