"""An API client narrows a list as the page does: every filter a page offers (its search form,
the subtree filter `within` that the dashboards' drill-downs use, flags such as a need's
`overdue` and `matched`, its `source`), its API offers with the same operations — and a
dashboard figure's drill-down, asked of the API with the same filters, counts the same rows."""
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import prison
import pytest
from sqlalchemy import text

from app import clock
from app.resources import RESOURCES
from tests.test_dashboard_drilldown import links_on

pytestmark = pytest.mark.db

PAIRS = [r for r in RESOURCES if r.api is not None]
# Filters an API offers beyond its page: where a ledger entry came from (no page column).
API_ONLY = {"point_entry": {"source_type", "source_id"}}


def registered(app, cls):
    return next(v for v in app.appbuilder.baseviews if type(v) is cls)


def operations(view) -> dict[str, list[str]]:
    """Each filterable column and the operations (filter argument names) offered on it."""
    return {column: [flt.arg_name for flt in filters]
            for column, filters in view._filters.get_search_filters().items()}


@pytest.mark.parametrize("resource", PAIRS, ids=lambda r: r.name)
def test_an_api_offers_every_filter_of_its_page(app, resource):
    page, api = operations(registered(app, resource.view)), operations(registered(app, resource.api))
    assert set(api) - set(page) == API_ONLY.get(resource.name, set())
    assert {column: api[column] for column in page} == page


def test_the_filters_the_api_lacked_before(app):
    """The subtree filter on every list placed in the tree (22 lacked it), and a need's
    overdue, matched and source (the dashboard's need cards link to them)."""
    placed = [r.name for r in PAIRS if r.view.model.__scope__.org]
    assert len(placed) >= 22
    for name in placed:
        api = operations(registered(app, next(r.api for r in PAIRS if r.name == name)))
        assert api.get("within") == ["within"], name
    need = operations(registered(app, next(r.api for r in PAIRS if r.name == "need")))
    assert need["overdue"] == ["flag"] and need["matched"] == ["flag"]
    assert "eq" in need["source"]


def api_query(page, url: str) -> str:
    """The API's `q` for a page URL's filters (`_flt_<index>_<column>=<value>`, repeated for
    several values; an IN filter takes a list, of one value too)."""
    filters = []
    offered = page._filters.get_search_filters()
    for key, values in parse_qs(urlsplit(url).query).items():
        found = re.fullmatch(r"_flt_(\d)_(.+)", key)
        if found:
            column = found[2]
            flt = offered[column][int(found[1])]
            several = len(values) > 1 or flt.arg_name in ("in", "not_in")
            filters.append({"col": column, "opr": flt.arg_name,
                            "value": values if several else values[0]})
    return prison.dumps({"filters": filters, "page_size": 1})


# The district, the district choosing a street (every link then narrowed `within` it), a community.
@pytest.mark.parametrize("username, street", [("zuzhibu", False), ("zuzhibu", True),
                                              ("shequ01", False)])
def test_every_drill_down_of_the_dashboard_counts_the_same_rows_on_the_api(
        app, as_user, api, ctx, username, street):
    query = ""
    if street:
        query = "?org=" + str(ctx.execute(text(
            "SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar())
    links = links_on(as_user(username).get(f"/dashboard/{query}").get_data(as_text=True))
    client, headers = api(username)
    pages = {r.name: registered(app, r.view) for r in PAIRS}
    wrong, asked = [], 0
    for url, expected, what in links:
        resource = urlsplit(url).path.strip("/").split("/")[0]
        response = client.get(f"/api/v1/{resource}/", headers=headers,
                              query_string={"q": api_query(pages[resource], url)})
        assert response.status_code == 200, (what, url, response.get_data(as_text=True))
        asked += "_flt_" in url
        if response.json["count"] != expected:
            wrong.append((what, expected, response.json["count"], url))
    assert not wrong, "the API disagrees with the dashboard's figures:\n" + "\n".join(map(str, wrong))
    assert asked >= 15  # filtered links: the test would catch a filter the API drops
    if street:
        assert sum("_flt_0_within=" in url for url, _, _ in links) >= 10


def test_a_subtree_filter_narrows_the_api_list(app, api, ctx):
    """A street's needs through the API: only those placed under it, fewer than the district's."""
    client, headers = api("zuzhibu")
    street = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar()
    q = prison.dumps({"filters": [{"col": "within", "opr": "within", "value": street}],
                      "page_size": 100})
    narrowed = client.get("/api/v1/need/", headers=headers, query_string={"q": q}).json
    everything = client.get("/api/v1/need/", headers=headers,
                            query_string={"q": prison.dumps({"page_size": 1})}).json["count"]
    path = ctx.execute(text("SELECT path FROM organization WHERE id = :s"), {"s": street}).scalar()
    under = ctx.execute(text(
        "SELECT n.id FROM need n JOIN organization o ON o.id = n.community_id "
        "WHERE n.deleted_on IS NULL AND o.path LIKE :p"), {"p": path + "%"}).scalars().all()
    assert 0 < narrowed["count"] < everything
    assert sorted(narrowed["ids"]) == sorted(under)


def test_an_api_filter_is_its_columns_own_whatever_filter_was_built_last(app, api, ctx):
    """FAB looks an operation up in a process-wide map of the filter class last built under
    its name: once an integer column's FilterGreater had been built, `gt` on a need's 登记时间
    read the wall-clock bound as UTC (a month's drill-down then differed by the needs raised in
    the zone's first eight hours of the month). Each column's own filter is used instead."""
    from flask_appbuilder.models.sqla.filters import FilterGreater, FilterSmaller

    need = registered(app, next(r.api for r in PAIRS if r.name == "need"))
    FilterGreater("id", need.datamodel), FilterSmaller("id", need.datamodel)  # FAB's map now
    created = ctx.execute(text("SELECT created_on FROM need WHERE deleted_on IS NULL "
                               "ORDER BY id LIMIT 1")).scalar()
    created = created if isinstance(created, datetime) else datetime.fromisoformat(created)
    wall = clock.to_local(created)
    client, headers = api("zuzhibu")

    def count(*filters):
        q = prison.dumps({"filters": [{"col": "created_on", "opr": o, "value": f"{v:%Y-%m-%d %H:%M:%S}"}
                                      for o, v in filters], "page_size": 1})
        response = client.get("/api/v1/need/", headers=headers, query_string={"q": q})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json["count"]

    minute = timedelta(minutes=1)
    assert count(("gt", wall - minute), ("lt", wall + minute)) >= 1
    assert count(("gt", wall + minute), ("lt", wall - minute)) == 0


@pytest.mark.parametrize("bad, says", [({"col": "no_such", "opr": "eq", "value": 1}, "不能按「no_such」筛选"),
                                       ({"col": "created_on", "opr": "ct", "value": "x"},
                                        "「created_on」没有筛选方式「ct」")])
def test_an_api_filter_no_column_offers_is_refused_in_chinese(api, bad, says):
    client, headers = api("zuzhibu")
    response = client.get("/api/v1/need/", headers=headers,
                          query_string={"q": prison.dumps({"filters": [bad]})})
    assert response.status_code == 400 and response.json["message"] == says
