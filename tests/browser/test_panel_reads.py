"""Issue 27 in the browser: a named set of pages per demo role (home, a list, a show page and,
where the role has one, the dashboard) at 1440 and 390 px — no console error, the menu on one
line at 1440 px; screenshots in artifacts/."""
import pytest

from tests.browser.conftest import ARTIFACTS, log_in, offline_page

pytestmark = pytest.mark.browser

# Every demo role; the later resources (月汇报, 季度督查, 整改任务, 工作要点) among the pages.
PAGES = {
    "admin": ["/", "/member/list/", "/member/show/first", "/dashboard/"],
    "zuzhibu": ["/", "/work_report/list/", "/rectification/show/first", "/dashboard/"],
    "jiedao01": ["/", "/inspection/list/", "/work_report/show/first", "/dashboard/"],
    "shequ01": ["/", "/need/list/", "/need/show/first", "/dashboard/"],
    "wangge01": ["/", "/need/list/", "/member/show/first"],
    "danwei01": ["/", "/work_plan_item/list/", "/need/show/first", "/dashboard/"],
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


def test_select_boxes_speak_the_pages_language(server, browser):
    """select2's messages (an AJAX select asking the server as the user types): Chinese in the
    Chinese panel, select2's own English in the English one."""
    page, outside = offline_page(browser, server, viewport={"width": 1440, "height": 900})
    log_in(page, server, "danwei01")
    for lang, said in (("zh", "没有匹配的记录"), ("en", "No results found")):
        page.goto(f"{server}/lang/{lang}")
        page.goto(f"{server}/resource/add")
        page.click("select#category + .select2-container .select2-selection")
        page.fill(".select2-container--open .select2-search__field", "zzqx")
        message = page.locator(".select2-results__message")
        message.wait_for()
        page.wait_for_function(
            "() => !document.querySelector('.select2-results__message')"
            ".textContent.match(/搜索|Searching/)")
        assert message.inner_text().strip() == said, lang
    page.goto(f"{server}/lang/zh")
    page.context.close()
    assert outside == []
