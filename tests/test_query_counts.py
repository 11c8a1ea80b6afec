"""No N+1 anywhere: the number of SQL statements a list page, an API list, a show page or an
API get runs does not depend on how many rows it shows (issue #9).

Every business view and API registered in app/resources.py is measured, as a user who sees
every row (admin), at two page sizes; a count that grows with the page size means a query per
row (a related record loaded one by one, a caption or permission looked up per row).
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime

import prison
import pytest
import time_machine
from sqlalchemy import event, func, select, text, true

from app import clock
from app.models.base import LIVE, Entity
from app.resources import RESOURCES
from app.services.work_report import REPORT_FIGURES
from app.views.base import EntityApi, EntityView

SMALL, LARGE = 2, 6
USER = "admin"
# A show page runs a fixed set of queries (the row, its related records, its panels, the
# rights of the menu); far more than this means something is loaded per related row.
SHOW_BUDGET = 60
# ...except where the page composes figures: a report not yet submitted shows its month's
# figures live, a statement or so per figure (whatever the data), so the budget grows by those.
SHOW_BUDGETS = {"WorkReportView": SHOW_BUDGET + len(REPORT_FIGURES)}
# Relationships loaded for all listed rows at once (one query each, whatever the page size).
BULK_LOADS_BUDGET = 12

VIEWS = [r.view for r in RESOURCES if issubclass(r.view, EntityView) and r.view.model is not None]
RESOURCE_APIS = [r.api for r in RESOURCES if r.api is not None and issubclass(r.api, EntityApi)]


class Statements(list):
    """The SQL statements run while measuring, and how many of them loaded a relationship for
    all the listed rows at once (a selectinload: there is none when no listed row has a value,
    so that number may vary with the rows; it is bounded, not per row)."""

    bulk_loads = 0
    lazy_loads = 0  # a related record loaded for one row, as it was touched


@contextmanager
def counting(app):
    from sqlalchemy.orm import Session

    from app.extensions import db

    statements = Statements()

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def classify(state):
        # A relationship loaded for all listed rows, or rows named for a whole page (the
        # audit log's related rows: app/views/records.py), one query per table.
        if state.is_relationship_load and state.lazy_loaded_from is None \
                or state.execution_options.get("gongjian_bulk_load"):
            statements.bulk_loads += 1
        elif state.is_relationship_load and isinstance(state.lazy_loaded_from.obj(), Entity):
            statements.lazy_loads += 1  # of a business row (not the user's own roles)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(Session, "do_orm_execute", classify)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(Session, "do_orm_execute", classify)


def _live(table):
    return table.c.deleted_on.is_(None) if "deleted_on" in table.c else true()


def _made_up_row(session, table, n) -> dict:
    """A row from nothing, for a table the `test` seed leaves empty: each required column gets
    its first coded choice, an existing row of the table it refers to, or a plain value."""
    row = {}
    for column in table.columns:
        if column.primary_key or column.nullable or column.default is not None \
                or column.server_default is not None:
            continue
        if column.foreign_keys:
            target = next(iter(column.foreign_keys)).column
            row[column.name] = session.execute(select(target).limit(1)).scalar()
        elif "choices" in column.info:
            row[column.name] = next(iter(column.info["choices"]))
        else:
            python_type = column.type.python_type
            row[column.name] = {str: f"q{n}", int: n, bool: False, date: clock.today(),
                                datetime: clock.utcnow()}.get(python_type, n)
    return row


def _enough_rows(ctx, model, wanted):
    """Make sure `model` has at least `wanted` live rows: the `test` seed is small, so copy an
    existing row's columns (unique values suffixed), or make rows up, until there are enough."""
    table = model.__table__
    with ctx.session() as session:
        have = session.execute(select(func.count()).select_from(table)
                               .where(_live(table))).scalar()
        if have >= wanted:
            return True
        source = session.execute(select(table).where(_live(table))
                                 .order_by(table.c.id).limit(1)).mappings().first()
        unique = {c.name for c in table.columns if c.unique} | {
            c.name for idx in table.indexes if idx.unique for c in idx.columns} | {
            c.name for con in table.constraints
            if con.__class__.__name__ == "UniqueConstraint" for c in con.columns}
        for n in range(wanted - have):
            if source is None:
                session.execute(table.insert().values(**_made_up_row(session, table, n)))
                continue
            row = {k: v for k, v in source.items() if k != "id"}
            for name in unique:
                value = row.get(name)
                if isinstance(value, str):  # the suffix kept whole within the column's length
                    suffix, length = f"-{have + n}", table.c[name].type.length
                    row[name] = (value[: length - len(suffix)] if length else value) + suffix
                elif value is not None:
                    return False  # a numeric unique key: leave the table as it is
            session.execute(table.insert().values(**row))
        session.commit()
    return True


@pytest.fixture(scope="module", autouse=True)
def tables_kept(app):
    """The rows copied here go when the module ends: the modules after it see the seed."""
    from tests.conftest import tables_kept_by

    with tables_kept_by(app):
        yield


@pytest.fixture(scope="module")
def browser(app):
    from tests.conftest import login

    return login(app, USER)


@pytest.fixture(scope="module")
def token(app):
    from tests.conftest import api_token

    return api_token(app, USER)


def _measure(app, get, url):
    """(statements that do not load in bulk, bulk loads, response) of one request. The clock
    stands still over the warm-up and the counted request: a browser session writes its last
    activity once a minute (app/security/sessions.py), and a minute that ran out between the
    two added its UPDATE and a reload to one page's count (11 against 9 in loaded full suites)."""
    with time_machine.travel(datetime.now(UTC), tick=False):
        get(url)  # warm: the first request of a page compiles its templates
        with counting(app) as statements:
            response = get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    assert statements.bulk_loads <= BULK_LOADS_BUDGET, f"{url}: {statements.bulk_loads} bulk loads"
    return len(statements) - statements.bulk_loads, response


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_list_and_show_pages_run_a_constant_number_of_queries(app, ctx, browser, view):
    assert _enough_rows(ctx, view.model, LARGE + 1), f"{view.model.__name__}: no rows to copy"
    base = f"/{view.model.__tablename__}"
    counts = {}
    for size in (SMALL, LARGE):
        counts[size], response = _measure(app, browser.get,
                                          f"{base}/list/?psize_{view.__name__}={size}")
        page = response.get_data(as_text=True)
        assert page.count(f"{base}/show/") >= size, f"{view.__name__}: not {size} rows listed"
    assert counts[LARGE] == counts[SMALL], \
        f"{view.__name__}: {counts[SMALL]} queries for {SMALL} rows, {counts[LARGE]} for {LARGE}"
    with ctx.session() as session:
        table = view.model.__table__
        pk = session.execute(select(table.c.id).where(_live(table))
                             .order_by(table.c.id.desc())).scalar()
    shown, _ = _measure(app, browser.get, f"{base}/show/{pk}")
    budget = SHOW_BUDGETS.get(view.__name__, SHOW_BUDGET)
    assert shown <= budget, f"{view.__name__}: the show page runs {shown} queries"


@pytest.mark.parametrize("api", RESOURCE_APIS, ids=lambda a: a.__name__)
def test_api_list_and_get_run_a_constant_number_of_queries(app, ctx, token, api):
    assert _enough_rows(ctx, api.model, LARGE + 1), f"{api.model.__name__}: no rows to copy"
    client = app.test_client()
    base = f"/api/v1/{api.resource_name}"

    def get(url):
        return client.get(url, headers=token)

    counts = {}
    for size in (SMALL, LARGE):
        counts[size], response = _measure(
            app, get, f"{base}/?q={prison.dumps({'page': 0, 'page_size': size})}")
        assert len(response.json["result"]) == size, f"{api.__name__}: not {size} rows"
    assert counts[LARGE] == counts[SMALL], \
        f"{api.__name__}: {counts[SMALL]} queries for {SMALL} rows, {counts[LARGE]} for {LARGE}"
    pk = response.json["ids"][0]
    got, _ = _measure(app, get, f"{base}/{pk}")
    assert got <= SHOW_BUDGET, f"{api.__name__}: GET one row runs {got} queries"


def test_the_listener_counts_what_runs(app, ctx):
    """The measurement itself: a statement run through the engine is counted."""
    with counting(app) as statements:
        ctx.execute(text("SELECT 1"))
    assert statements.count("SELECT 1") == 1


def test_a_huge_list_is_counted_up_to_the_cap_and_still_pages(app, ctx, browser, token):
    """Counting stops at LIST_COUNT_CAP: the page says "7+" (here, with the cap at 7), the API
    gives the cap with `count_capped`; pages past the counted rows still list their rows. Under
    the cap the count is exact."""
    import re

    from app.models.lists import Need

    with ctx.session() as session:
        total = session.execute(select(func.count()).select_from(Need.__table__)
                                .where(Need.__table__.c.deleted_on.is_(None))).scalar()
    assert total > 10
    record_count = re.compile(r"</strong>\s*([\d,]+\+?)\s*</div>")
    exact = browser.get("/need/list/?psize_NeedView=2").get_data(as_text=True)
    assert record_count.search(exact).group(1) == str(total)
    app.config["LIST_COUNT_CAP"] = 7
    try:
        page = browser.get("/need/list/?psize_NeedView=2").get_data(as_text=True)
        assert record_count.search(page).group(1) == "7+"
        assert page.count("/need/show/") >= 2
        # Page 5 starts at row 10, past the counted 7: it lists its rows and offers the next.
        deep = browser.get("/need/list/?psize_NeedView=2&page_NeedView=5").get_data(as_text=True)
        assert deep.count("/need/show/") >= 2
        assert "page_NeedView=6" in deep
        listed = app.test_client().get(
            f"/api/v1/need/?q={prison.dumps({'page': 0, 'page_size': 2})}", headers=token).json
        assert (listed["count"], listed["count_capped"], len(listed["result"])) == (7, True, 2)
    finally:
        app.config["LIST_COUNT_CAP"] = 10_000


EXPORT_ROWS = 40  # more than EXPORT_BUDGET: a query per exported row cannot stay under it
EXPORT_BUDGET = 30


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_an_export_runs_a_constant_number_of_queries(app, ctx, browser, view):
    """An export streams every listed row: the related records its columns show (captions such
    as a service record's 服务对象 included) are loaded per chunk, never per row."""
    table = view.model.__table__
    if not _enough_rows(ctx, view.model, EXPORT_ROWS + 1):
        with ctx.session() as session:
            rows = session.execute(select(func.count()).select_from(table)
                                   .where(_live(table))).scalar()
        pytest.skip(f"the test data set has {rows} rows of {table.name} (a numeric unique key: "
                    "none copied): too few to tell")
    url = f"/{view.model.__tablename__}/export/csv"
    with counting(app) as statements:
        response = browser.get(url)
        body = response.get_data(as_text=True)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    assert body.count("\n") > EXPORT_ROWS, f"{url}: fewer rows than were made"
    assert len(statements) - statements.bulk_loads <= EXPORT_BUDGET, \
        f"{url}: {len(statements)} statements for {body.count(chr(10)) - 1} rows"
    # Small data hides an N+1 (a few related rows, each loaded once): none may load lazily.
    assert statements.lazy_loads == 0, f"{url}: {statements.lazy_loads} related rows loaded one by one"


@pytest.mark.parametrize("view", [v for v in VIEWS if issubclass(v.model, Entity)],
                         ids=lambda v: v.__name__)
def test_every_list_order_reads_an_index_of_live_rows(view):
    """Each column a list orders by (its default order first) has an index on (column, id) of
    the live rows: the list's whole WHERE and ORDER BY, read as one index range."""
    table = view.model.__table__
    live = {tuple(c.name for c in index.columns) for index in table.indexes
            if str(index.dialect_options["postgresql"]["where"]) == LIVE
            and str(index.dialect_options["sqlite"]["where"]) == LIVE}
    # A model's named order (`__orders__`: meetings to come first, open resolutions first) sorts
    # the rows in scope instead — tens of thousands at a city's size, not millions.
    named = getattr(view.model, "__orders__", {})
    orders = [view.base_order[0]] if view.base_order and view.base_order[0] not in named else []
    orders += [c for c in view.order_columns if c in table.c]
    missing = [c for c in orders if c != "id" and (c, "id") not in live]
    assert not missing, f"{table.name}: no live-order index for {missing}"
