"""Charts at a district's and a city's size (app/dashboards/levels.py): a per-community chart
shows the streets at district scope, each drilling down to the dashboard at its street, where
its communities show; at most MAX_BARS bars, sorted by value, the rest summed in one; counts on
whole-number axes; the star charts show the published ratings the seed made (last year's)."""
import html
import json
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from app import clock
from app.dashboards.levels import MAX_BARS, Bar, capped, grouped
from tests.conftest import tables_kept_by
from tests.crowd import EXTRA, crowd_street

YEAR = clock.today().year
CHART = re.compile(r'id="chart-([^"]+)" data-chart="([^"]*)"')
pytestmark = pytest.mark.db

NODE_CHARTS = ("needs_by_community", "registration_rates", "members_by_grid",
               "star_distribution_unit", "star_distribution_member")


def charts(browser, query="") -> dict[str, dict]:
    response = browser.get(f"/dashboard/{query}")
    assert response.status_code == 200
    return {name: json.loads(html.unescape(spec))
            for name, spec in CHART.findall(response.get_data(as_text=True))}


# --- the grouping itself, on a tree written out here ------------------------------------------

NODES = {1: ("云溪区委", "district"), 2: ("东区委", "district"), 10: ("甲街道", "street"),
         11: ("乙街道", "street"), 20: ("丙街道", "street")}
PATHS = {100: "/1/10/100/", 101: "/1/10/101/", 110: "/1/11/110/", 200: "/2/20/200/"}
NODES.update({c: (f"社区{c}", "community") for c in PATHS})


def rows_at(*communities):
    return [{"community_id": c, "needs": c % 7} for c in communities]


def test_rows_in_one_street_show_its_communities():
    bars = grouped(rows_at(100, 101), "community_id", PATHS, NODES)
    assert {(b.node_id, b.own) for b in bars} == {(100, True), (101, True)}


def test_rows_in_two_streets_show_the_streets():
    bars = grouped(rows_at(100, 101, 110), "community_id", PATHS, NODES)
    assert {(b.name, b.own) for b in bars} == {("甲街道", False), ("乙街道", False)}
    assert next(b for b in bars if b.node_id == 10).total("needs") == 100 % 7 + 101 % 7


def test_rows_in_two_districts_show_the_districts():
    bars = grouped(rows_at(100, 110, 200), "community_id", PATHS, NODES)
    assert {b.name for b in bars} == {"云溪区委", "东区委"}


def test_one_community_is_its_own_bar():
    bars = grouped(rows_at(100, 100), "community_id", PATHS, NODES)
    assert [(b.node_id, b.own, len(b.rows)) for b in bars] == [(100, True, 2)]


def test_at_most_max_bars_sorted_the_rest_summed():
    bars = [Bar(i, f"社区{i:02d}", "community", rows=[{"needs": i}]) for i in range(30)]
    bars.append(Bar(99, "无数据社区", "community", rows=[{"needs": None}]))
    shown = capped(bars, lambda b: b.total("needs") or None)
    assert len(shown) == MAX_BARS
    values = [b.total("needs") for b in shown[:-1]]
    assert values == sorted(values, reverse=True) == list(range(29, 29 - (MAX_BARS - 1), -1))
    rest = shown[-1]
    assert rest.name == f"其余{31 - (MAX_BARS - 1)}个社区" and rest.node_id is None
    assert rest.total("needs") == sum(range(30)) - sum(values)  # nothing lost, nothing twice


# --- the dashboard, at district scope and drilled down ----------------------------------------


@pytest.fixture(scope="module")
def crowded(app):
    with tables_kept_by(app):
        yield crowd_street(app)


def test_the_district_sees_streets_that_drill_down(as_user, ctx, crowded):
    streets = dict(ctx.execute(text(
        "SELECT id, COALESCE(short_name, name) FROM organization WHERE type = 'street' "
        "AND deleted_on IS NULL")).all())
    shown = charts(as_user("zuzhibu"))
    for name in NODE_CHARTS:
        spec = shown[name]
        assert set(spec["categories"]) <= set(streets.values()), name
        for url in spec["drill"]:
            query = parse_qs(urlsplit(url).query)
            assert urlsplit(url).path == "/dashboard/" and int(query["org"][0]) in streets
        # A street's bar opens its dashboard, not a list of some of its rows.
        assert all(link is None for series in spec["series"] for link in series["links"])
    needs = shown["needs_by_community"]
    values = needs["series"][0]["data"]
    assert values == sorted(values, reverse=True)
    assert needs["counts"] is True and shown["registration_rates"]["counts"] is False


def test_a_street_drilled_into_shows_its_communities_at_most_max_bars(as_user, ctx, crowded):
    browser = as_user("zuzhibu")
    district = charts(browser)["needs_by_community"]
    street_name = ctx.execute(text("SELECT COALESCE(short_name, name) FROM organization "
                                   "WHERE id = :s"), {"s": crowded["street"]}).scalar()
    at = district["categories"].index(street_name)
    drilled = charts(browser, "?" + urlsplit(district["drill"][at]).query)["needs_by_community"]
    # The street's communities with needs raised this year (other modules may add communities
    # without any: they have no bar).
    communities = ctx.execute(text(
        "SELECT count(DISTINCT n.community_id) FROM need n JOIN organization o "
        "ON o.id = n.community_id WHERE o.parent_id = :s AND o.deleted_on IS NULL "
        "AND n.deleted_on IS NULL AND n.created_on >= :b AND n.created_on < :e"),
        {"s": crowded["street"], "b": clock.day_begins(date(YEAR, 1, 1)),
         "e": clock.day_begins(date(YEAR + 1, 1, 1))}).scalar()
    assert communities >= EXTRA + 1 > MAX_BARS
    assert len(drilled["categories"]) == MAX_BARS
    assert drilled["categories"][-1] == f"其余{communities - (MAX_BARS - 1)}个社区"
    # Each kept bar is named by its community's short name (the rows' own nodes).
    names = set(ctx.execute(text("SELECT COALESCE(short_name, name) FROM organization "
                                 "WHERE parent_id = :s"), {"s": crowded["street"]}).scalars())
    assert set(drilled["categories"][:-1]) <= names
    needs = drilled["series"][0]
    # The street's bar is the sum of its communities' bars, the summary included.
    assert sum(needs["data"]) == district["series"][0]["data"][at]
    assert needs["data"][:-1] == sorted(needs["data"][:-1], reverse=True)
    # Each community's bar lists its rows; the summary lists nothing.
    assert all(link and "_flt_0_community=" in link for link in needs["links"][:-1])
    assert needs["links"][-1] is None and not any(drilled["drill"])


def test_a_street_admin_cannot_drill_into_another_street(as_user, ctx, crowded):
    other = ctx.execute(text("SELECT id FROM organization WHERE type = 'street' AND id <> :s "
                             "AND deleted_on IS NULL"), {"s": crowded["street"]}).scalar()
    browser = as_user("jiedao01")
    assert browser.get(f"/dashboard/?org={other}").status_code == 404
    own = charts(browser)["needs_by_community"]
    assert len(own["categories"]) == MAX_BARS and not any(own["drill"])


def test_every_chart_at_district_scope_has_at_most_max_bars(as_user, crowded):
    for username in ("admin", "zuzhibu", "shenji", "jiedao01"):
        for name, spec in charts(as_user(username)).items():
            assert len(spec["categories"]) <= MAX_BARS, (username, name)


def test_the_star_charts_show_the_published_ratings(as_user, ctx, crowded):
    rated = ctx.execute(text(
        "SELECT max(period) FROM star_rating WHERE status = '已公示' AND period_kind = 'year' "
        "AND deleted_on IS NULL AND period <= :y"), {"y": str(clock.today().year)}).scalar()
    assert rated is not None, "the seed publishes last year's ratings"
    published = dict(ctx.execute(text(
        "SELECT subject_type, count(*) FROM star_rating WHERE status = '已公示' AND period = :p "
        "AND deleted_on IS NULL GROUP BY subject_type"), {"p": rated}).all())
    browser = as_user("zuzhibu")
    page = browser.get("/dashboard/").get_data(as_text=True)
    shown = charts(browser)
    for subject, label in (("unit", "驻区单位"), ("member", "党员")):
        spec = shown[f"star_distribution_{subject}"]
        assert f"{label}星级分布（{rated}，已公示）" in page
        assert sum(sum(s["data"]) for s in spec["series"]) == published[subject]


def test_a_board_reads_each_node_once(app, as_user, crowded):
    """Its figures name the communities and its charts group them (levels.nodes_read_once): no
    node is read twice by one board — a city's 1,800 communities were read by five figures and
    four charts."""
    from sqlalchemy import event

    from app.extensions import db

    browser = as_user("zuzhibu")
    asked: list[set] = []

    def record(conn, cursor, statement, parameters, *args):
        # The nodes' names and paths (not which of them the viewer may choose, nor the rollups'
        # ancestors brought up to date before reading).
        if "organization.name" in statement and "organization.id IN" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            asked.append({v for v in values if type(v) is int})
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert browser.get(f"/dashboard/?period={YEAR}").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(asked) >= 2  # the figures' communities, then the nodes above them
    seen: set = set()
    for ids in asked:
        assert not ids & seen, sorted(ids & seen)[:10]
        seen |= ids
