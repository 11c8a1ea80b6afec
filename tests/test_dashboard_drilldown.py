"""Drill-down: every card, bar and table on the dashboard that links somewhere opens the list of
the rows behind it, and that list holds exactly as many rows as the figure says. FAB silently
drops a filter argument on a column its view does not search (the list would then show every
row), so each link is opened as the user and its rows counted."""
import html
import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import text

from app import clock

pytestmark = pytest.mark.db

CARD = re.compile(r'<a class="gj-card gj-card-link" href="([^"]+)" data-figure="([^"]*)" '
                  r'data-count="(\d+)"[^>]*>\s*<div class="gj-card-title">([^<]+)</div>')
MORE = re.compile(r'<a class="gj-more" href="([^"]+)" data-count="(\d+)"')
CHART = re.compile(r'id="chart-([^"]+)" data-chart="([^"]*)"')


def links_on(page: str) -> list[tuple[str, int, str]]:
    """(url, rows expected, what) of every link on a dashboard page."""
    found = [(html.unescape(url), int(n), f"card {title.strip()}")
             for url, _figure, n, title in CARD.findall(page)]
    found += [(html.unescape(url), int(n), "table") for url, n in MORE.findall(page)]
    for name, spec in CHART.findall(page):
        spec = json.loads(html.unescape(spec))
        for series in spec["series"]:
            for i, (url, n) in enumerate(zip(series["links"], series["counts"])):
                if url:
                    found.append((url, n, f"chart {name} / {series['name']} / {spec['categories'][i]}"))
    return found


def listed_ids(browser, app, url) -> set[int]:
    """The ids of the rows the list at `url` shows, over all its pages."""
    resource = urlsplit(url).path.strip("/").split("/")[0]
    view = next(v for v in app.appbuilder.baseviews if getattr(v, "route_base", "") == f"/{resource}")
    from tests.security.support import listed_on_pages

    return listed_on_pages(browser, url, resource, type(view).__name__)


def listed(browser, app, url) -> int:
    """How many rows the list at `url` shows (over all its pages)."""
    return len(listed_ids(browser, app, url))


def check_every_link(app, browser, query="") -> list:
    # One instant for the figures and their lists: a need's step falls due minutes after
    # intake (一般: 受理 within 6 minutes), and must not fall due between the two.
    with time_machine.travel(datetime.now(UTC), tick=False):
        return _check_every_link(app, browser, query)


def _check_every_link(app, browser, query) -> list:
    page = browser.get(f"/dashboard/{query}")
    assert page.status_code == 200
    links = links_on(page.get_data(as_text=True))
    wrong = []
    seen = {}
    for url, expected, what in links:
        if url not in seen:
            seen[url] = listed(browser, app, url)
        if seen[url] != expected:
            wrong.append((what, expected, seen[url], url))
    assert not wrong, "drill-down lists disagree with their figures:\n" + "\n".join(map(str, wrong))
    return links


# The district, a community and a unit (a street: the district choosing one, below).
@pytest.mark.parametrize("username", ["zuzhibu", "shequ01", "danwei01"])
def test_every_link_lists_as_many_rows_as_its_figure(app, as_user, username):
    links = check_every_link(app, as_user(username))
    cards = {what for _, _, what in links if what.startswith("card")}
    for title in ("需求总数", "本期办结", "办结率", "按期办结率", "平均满意度", "逾期需求", "需求匹配率",
                  "微心愿认领率", "服务时长", "会议召开率", "逾期议定事项"):
        assert f"card {title}" in cards, title
    charts = {what.split(" / ")[0] for _, _, what in links if what.startswith("chart")}
    expected = {"chart need_funnel", "chart needs_per_month", "chart wishes_per_month", "chart service_hours_per_month",
                "chart meetings_held_vs_planned"}
    # At district scope the per-community charts show streets, whose bars open the street's
    # dashboard rather than a list (tests/test_dashboard_levels.py); a street's lists its rows.
    if username != "zuzhibu":
        expected.add("chart needs_by_community")
    assert expected <= charts
    # Links that count something: the test would catch a list showing every row.
    assert sum(1 for _, n, _ in links if n) >= 15


def test_links_hold_with_a_street_and_a_month(app, as_user, ctx):
    street = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar()
    links = check_every_link(app, as_user("zuzhibu"), f"?org={street}")
    assert any(what.startswith("chart needs_by_community") for _, _, what in links)
    assert all(f"_flt_0_within={street}" in url for url, _, what in links if "card" in what), \
        "a street's cards must list the street's rows only"
    month = clock.today().strftime("%Y-%m")
    check_every_link(app, as_user("zuzhibu"), f"?period={month}")


def test_a_past_period_keeps_its_links_exact(app, as_user):
    last_year = str(clock.today().year - 1)
    links = check_every_link(app, as_user("zuzhibu"), f"?period={last_year}")
    # Registrations as of the end of last year need a date filter the registration lists do
    # not offer: no link rather than a list of today's registrations.
    for url, _, _ in links:
        assert "/unit_registration/list/" not in url or "registered_on" in url


def test_the_node_box_offers_only_nodes_in_scope(as_user, ctx):
    def offered(username):
        response = as_user(username).get("/dashboard/nodes")
        assert response.status_code == 200
        return {row["id"] for row in response.json["results"]}

    street = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar()
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    assert offered("shequ01") == {community}
    assert street in offered("jiedao01") and community in offered("jiedao01")
    assert offered("danwei01") == set()
    everything = ctx.execute(text("SELECT count(*) FROM organization WHERE type IN "
                                  "('district', 'street', 'community') AND deleted_on IS NULL")
                             ).scalar()
    assert len(offered("zuzhibu")) == min(everything, 20)  # one page of the select box


def test_a_node_outside_the_scope_does_not_exist(as_user, ctx):
    other = ctx.execute(text(
        "SELECT id FROM organization WHERE type = 'community' AND id <> "
        "(SELECT org_id FROM ab_user WHERE username = 'shequ01') ORDER BY id")).scalar()
    assert as_user("shequ01").get(f"/dashboard/?org={other}").status_code == 404
    assert as_user("shequ01").get(f"/dashboard/figure/need_funnel.csv?org={other}").status_code == 404
    assert as_user("danwei01").get(f"/dashboard/?org={other}").status_code == 404
    assert as_user("zuzhibu").get(f"/dashboard/?org={other}").status_code == 200
    assert as_user("zuzhibu").get("/dashboard/?period=yesterday").status_code == 404
    assert as_user("zuzhibu").get("/dashboard/figure/nothing.csv").status_code == 404


def test_who_may_open_the_dashboard(app, as_user):
    assert as_user("dangyuan01").get("/dashboard/").status_code == 403
    assert app.test_client().get("/dashboard/").status_code in (302, 401)
    for username in ("admin", "zuzhibu", "jiedao01", "shequ01", "danwei01", "shenji"):
        assert as_user(username).get("/dashboard/").status_code == 200, username


def test_the_page_is_offline_and_has_no_inline_code(as_user):
    page = as_user("shequ01").get("/dashboard/").get_data(as_text=True)
    # served here, each URL carrying its content's hash (?v=…, app/ops.py)
    assert re.search(r'"/static/vendor/echarts\.min\.js\?v=[0-9a-f]+"', page)
    assert re.search(r'"/static/js/dashboard\.js\?v=[0-9a-f]+"', page)
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page)
    content = page.split('<div class="gj-dashboard">', 1)[1].split("</main>", 1)[0] \
        if "</main>" in page else page.split('<div class="gj-dashboard">', 1)[1]
    assert "<script" not in content.split('<section class="gj-section gj-downloads">')[0]
    assert len(CHART.findall(page)) >= 8


def test_a_figures_csv_is_recorded_as_an_export(as_user, ctx):
    before = ctx.execute(text("SELECT count(*) FROM audit_log WHERE action = 'export' "
                              "AND resource = 'dashboard'")).scalar()
    response = as_user("shenji").get("/dashboard/figure/needs_by_community.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    body = response.get_data(as_text=True)
    assert body.splitlines()[0] == "\ufeff期间,社区,需求数,已办结,逾期"
    row = ctx.execute(text("SELECT username, changes FROM audit_log WHERE action = 'export' "
                           "AND resource = 'dashboard' ORDER BY id DESC")).first()
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE action = 'export' "
                            "AND resource = 'dashboard'")).scalar() == before + 1
    changes = json.loads(row.changes)
    assert row.username == "shenji" and changes["figure"] == "needs_by_community"
    assert changes["rows"] == len(body.splitlines()) - 1
