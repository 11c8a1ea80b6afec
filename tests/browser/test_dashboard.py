"""The dashboard in Debian's chromium with every request to another host refused: the charts
are drawn by the ECharts the panel serves itself, and a click on a bar opens its rows. The
screenshots go to the git-ignored artifacts/ folder (.ci/run prints where)."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser

# Each chart's canvas, and how many of its pixels are not blank (a drawn chart has many).
PAINTED = """() => Array.from(document.querySelectorAll('[data-chart]')).map(el => {
  const canvas = el.querySelector('canvas');
  if (!canvas || !canvas.width || !canvas.height) { return [el.id, 0]; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted++; } }
  return [el.id, painted];
})"""

# The middle of the first bar of a bar chart, in page coordinates.
FIRST_BAR = """(id) => {
  const el = document.getElementById(id);
  const chart = echarts.getInstanceByDom(el);
  const layout = chart.getModel().getSeriesByIndex(0).getData().getItemLayout(0);
  const box = el.getBoundingClientRect();
  return {x: box.left + layout.x + layout.width / 2, y: box.top + layout.y + layout.height / 2};
}"""


@pytest.fixture
def chromium(browser):
    """The stage's one chromium (conftest.py): Playwright's sync API runs one at a time."""
    return browser


def open_page(chromium, server, username):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
               else (outside.append(route.request.url), route.abort()))
    page.goto(f"{server}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page, outside


@pytest.mark.parametrize("username", ["zuzhibu", "shequ01", "danwei01"])
def test_the_charts_draw_offline(chromium, server, username):
    ARTIFACTS.mkdir(exist_ok=True)
    page, outside = open_page(chromium, server, username)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/dashboard/")
    charts = page.locator("[data-chart]")
    assert charts.count() >= 8
    page.wait_for_function(
        "() => document.querySelectorAll('[data-chart]:not([data-drawn])').length === 0",
        timeout=20_000)
    painted = dict(page.evaluate(PAINTED))
    assert len(painted) == charts.count()
    blank = [name for name, pixels in painted.items() if pixels < 500]
    assert not blank, f"charts left blank: {blank}"
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{username}.png"), full_page=True)
    assert not errors, errors
    assert outside == [], f"the dashboard asked for other hosts: {outside}"
    page.close()


def test_a_click_on_a_bar_opens_its_rows(chromium, server):
    page, outside = open_page(chromium, server, "shequ01")
    page.goto(f"{server}/dashboard/")
    page.wait_for_selector("#chart-needs_by_community[data-drawn]")
    page.locator("#chart-needs_by_community").scroll_into_view_if_needed()
    point = page.evaluate(FIRST_BAR, "chart-needs_by_community")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url("**/need/list/**")
    assert "_flt_0_community=" in page.url
    assert page.locator("a[href^='/need/show/']").count() > 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-drilldown.png"), full_page=True)
    assert outside == []
    page.close()


def test_the_notice_board_fits_a_phone(chromium, server):
    """公示栏 on a phone's screen, without login: nothing wider than the screen but the tables,
    which scroll inside their own box."""
    page = chromium.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN",
                             device_scale_factor=2, is_mobile=True, has_touch=True)
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
               else (outside.append(route.request.url), route.abort()))
    page.goto(f"{server}/public/")
    page.click("a[href^='/public/community/']")
    page.wait_for_load_state("networkidle")
    assert page.locator("#needs table").count() == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "public-board-phone.png"), full_page=True)
    assert outside == []
    page.close()
