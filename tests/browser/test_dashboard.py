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


# Per chart, read off the ECharts option the page drew: how many categories (bars, or a
# funnel's steps), their names, and the value axis's least step.
DRAWN = """() => Array.from(document.querySelectorAll('[data-chart]')).map(el => {
  const option = echarts.getInstanceByDom(el).getOption();
  const axes = [...(option.xAxis || []), ...(option.yAxis || [])];
  const category = axes.find(a => a.type === 'category');
  const value = axes.find(a => a.type === 'value');
  const names = category ? category.data : option.series[0].data.map(d => d.name);
  return [el.id, names, value ? value.minInterval || null : null];
})"""


@pytest.fixture
def crowded(app):
    """jiedao01's street with more communities than a chart shows bars (tests/crowd.py)."""
    from tests.conftest import tables_kept_by
    from tests.crowd import crowd_street

    with tables_kept_by(app):
        yield crowd_street(app)


def test_at_district_scope_no_chart_has_more_than_20_bars(chromium, server, crowded):
    page, outside = open_page(chromium, server, "zuzhibu")
    page.goto(f"{server}/dashboard/")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-chart]:not([data-drawn])').length === 0",
        timeout=20_000)
    drawn = {name: (names, step) for name, names, step in page.evaluate(DRAWN)}
    assert len(drawn) >= 8
    crowded_bars = {name: len(names) for name, (names, _) in drawn.items() if len(names) > 20}
    assert not crowded_bars, f"charts with more than 20 bars: {crowded_bars}"
    # Counts step by whole numbers; the district's per-community chart shows its streets.
    assert drawn["chart-needs_by_community"][1] == 1
    assert drawn["chart-registration_rates"][1] is None
    page.screenshot(path=str(ARTIFACTS / "dashboard-district.png"), full_page=True)

    # A click on the crowded street's bar opens the street's dashboard: its communities, the
    # largest 19 and the rest summed in a 20th bar.
    names = drawn["chart-needs_by_community"][0]
    index = page.evaluate("""(street) => { const spec = JSON.parse(document.getElementById(
        'chart-needs_by_community').getAttribute('data-chart'));
        return spec.drill.findIndex(url => url && url.includes('org=' + street)); }""",
                          crowded["street"])
    assert index >= 0, names
    page.locator("#chart-needs_by_community").scroll_into_view_if_needed()
    box = page.evaluate("""([id, i]) => {
      const el = document.getElementById(id);
      const layout = echarts.getInstanceByDom(el).getModel().getSeriesByIndex(0).getData()
        .getItemLayout(i);
      const rect = el.getBoundingClientRect();
      return {x: rect.left + layout.x + layout.width / 2,
              y: rect.top + layout.y + layout.height / 2};
    }""", ["chart-needs_by_community", index])
    page.mouse.click(box["x"], box["y"])
    page.wait_for_url(lambda url: "/dashboard/" in url and f"org={crowded['street']}" in url)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-chart]:not([data-drawn])').length === 0",
        timeout=20_000)
    drilled = {name: names for name, names, _ in page.evaluate(DRAWN)}
    communities = drilled["chart-needs_by_community"]
    assert len(communities) == 20 and communities[-1].startswith("其余")
    assert all(len(names) <= 20 for names in drilled.values())
    page.screenshot(path=str(ARTIFACTS / "dashboard-street.png"), full_page=True)
    assert outside == []
    page.close()
