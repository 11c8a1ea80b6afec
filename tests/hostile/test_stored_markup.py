"""Stored markup renders inert: script tags, attribute breakers, template syntax and
`javascript:` links written into every text field of every entity come back escaped in lists,
show and edit pages, the dashboard, the notice board, the to-do home page and the exports.

The payloads are written straight into the tables (as a careless import or another tool could
leave them, past the forms' own validation), then restored, so the rest of the suite sees the
seeded data unchanged. A page fails if its parsed HTML holds an element or attribute the
payload made: an event-handler attribute carrying it, a `javascript:` URL, a script without the
page's nonce, or markup inside a script's text (JSON not escaped for a <script> block).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import String, Text, select, update

from tests.conftest import login

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "{{7*7}}<!--",
    "javascript:alert(1)//",
    "</textarea></title><svg onload=alert(1)>",
]
# Text columns that are not free text: codes with choices are excluded by their `choices`;
# these are internal keys, hashes, stored file names, parsed period codes and JSON the code
# reads back — nobody types them, and junk in them tests parsing, not escaping.
INTERNAL = {"path", "code", "id_number_enc", "id_number_hash", "file_path", "stored_name",
            "content_type", "file_type", "period", "inputs", "thresholds", "source_type",
            "xun_days"}
ROWS_PER_MODEL_SHOWN = 3


def _free_text_columns(model):
    return [c for c in model.__table__.columns
            if isinstance(c.type, (String, Text)) and "choices" not in c.info
            and c.name not in INTERNAL and not c.name.endswith("_key")]


def _entities():
    from app.extensions import db
    from app.models.base import Entity

    return sorted((m.class_ for m in db.Model.registry.mappers
                   if issubclass(m.class_, Entity) and _free_text_columns(m.class_)),
                  key=lambda cls: cls.__name__)


@pytest.fixture(scope="module")
def hostile_text(app):
    """Every free-text field of every row holds a payload (rotating, with the row id so that
    unique columns stay unique); the original values come back afterwards."""
    from app.extensions import db

    saved, written = [], {}
    with app.app_context():
        for model in _entities():
            columns = _free_text_columns(model)
            table = model.__table__
            rows = db.session.execute(select(table.c.id, *columns)).all()
            saved.append((model, columns, rows))
            for row in rows:
                values = {c.name: f"{PAYLOADS[(row.id + i) % len(PAYLOADS)]}#{row.id}"
                          for i, c in enumerate(columns)}
                db.session.execute(update(table).where(table.c.id == row.id).values(**values))
            written[model.__name__] = (len(columns), len(rows))
        db.session.commit()
        db.session.remove()
    yield written
    with app.app_context():
        for model, columns, rows in saved:
            table = model.__table__
            for row in rows:
                db.session.execute(update(table).where(table.c.id == row.id).values(
                    **{c.name: getattr(row, c.name) for c in columns}))
        db.session.commit()
        db.session.remove()


class Inspector(HTMLParser):
    """Collects what the payloads would have made executable, were they not escaped."""

    URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.nonce: str | None = None
        self._script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and "alert(1)" in value:
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in self.URL_ATTRS and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "svg" and any(name == "onload" for name, _ in attrs):
            self.problems.append("<svg onload>")
        if tag == "script":
            found = dict(attrs)
            if "src" not in found:
                nonce = found.get("nonce")
                if not nonce or (self.nonce is not None and nonce != self.nonce):
                    self.problems.append(f"<script {found}> without the page's nonce")
                self.nonce = self.nonce or nonce
            self._script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and re.search(r"<\s*/?\s*(script|img|svg)|<!--", data, re.IGNORECASE) \
                and "alert(1)" in data:
            self.problems.append(f"markup inside a script: {data[:120]!r}")


def inert(html: str) -> list[str]:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


def _entity_views(app):
    from app.views.base import EntityView

    return [v for v in app.appbuilder.baseviews if isinstance(v, EntityView)]


def _check(browser, url, problems, statuses=(200,)):
    response = browser.get(url)
    assert response.status_code in statuses, f"{url}: {response.status_code}"
    if response.status_code != 200:
        return ""
    page = response.get_data(as_text=True)
    problems += [f"{url}: {found}" for found in inert(page)]
    return page


def test_the_inspector_catches_what_it_looks_for():
    """The check itself can fail: raw payloads in a page are reported, escaped ones are not."""
    from markupsafe import escape

    raw = "".join(f"<p title='{p}'>{p}</p><a href=\"{p}\">x</a>" for p in PAYLOADS)
    assert len(inert(raw)) >= 4
    assert inert('<script nonce="n">var x = {"a": "<script>alert(1)</script>"};</script>')
    escaped = "".join(f"<p title=\"{escape(p)}\">{escape(p)}</p>" for p in PAYLOADS)
    assert inert(escaped) == []


def test_lists_show_and_edit_pages_render_stored_markup_inert(app, hostile_text):
    admin = login(app, "admin")
    problems, shown, pages = [], 0, 0
    for view in _entity_views(app):
        base = view.route_base
        page = _check(admin, f"{base}/list/", problems)
        pages += 1
        if "alert(1)" in page:
            shown += 1
        model = view.datamodel.obj
        with app.app_context():
            from app.extensions import db
            from app.security.scope import unscoped

            with unscoped():
                live = select(model.id)
                if hasattr(model, "deleted_on"):
                    live = live.where(model.deleted_on.is_(None))
                ids = db.session.execute(live.order_by(model.id).limit(ROWS_PER_MODEL_SHOWN)
                                         ).scalars().all()
            db.session.remove()
        for pk in ids:
            _check(admin, f"{base}/show/{pk}", problems)
            pages += 1
            if view.edit_columns and "edit" in view.base_permissions:
                _check(admin, f"{base}/edit/{pk}", problems, statuses=(200, 302, 403, 404))
                pages += 1
    written = sum(columns * rows for columns, rows in hostile_text.values())
    print(f"\nstored markup: {len(PAYLOADS)} payloads in {written} cells of "
          f"{len(hostile_text)} tables; {pages} list/show/edit pages checked")
    assert not problems, "\n".join(problems[:40])
    # The payloads reached the pages (escaped): the check looked at real data.
    assert shown >= len(_entity_views(app)) // 2, shown


@pytest.mark.parametrize("username", ["admin", "jiedao01", "shequ01", "danwei01", "shenji"])
def test_home_and_dashboard_render_stored_markup_inert(app, hostile_text, username):
    browser = login(app, username)
    problems = []
    _check(browser, "/", problems)
    dashboard = _check(browser, "/dashboard/", problems, statuses=(200, 302, 403))
    if dashboard:
        charts = re.findall(r'data-chart="([^"]*)"', dashboard)
        assert charts, "the dashboard draws charts"
        # The chart data is JSON inside an attribute: quotes and brackets arrive as entities.
        for spec in charts:
            assert "<" not in spec and '"' not in spec
    assert not problems, "\n".join(problems)


def test_the_notice_board_renders_stored_markup_inert(app, hostile_text):
    from app.models.org import Organization

    anonymous = app.test_client()
    problems = []
    board = anonymous.get("/public/")
    assert board.status_code == 200
    problems += inert(board.get_data(as_text=True))
    with app.app_context():
        from app.extensions import db
        from app.security.scope import unscoped

        with unscoped():
            communities = db.session.execute(select(Organization.id).where(
                Organization.type == "community")).scalars().all()
        db.session.remove()
    assert communities
    shown = 0
    for pk in communities:
        response = anonymous.get(f"/public/community/{pk}")
        assert response.status_code in (200, 404), pk
        page = response.get_data(as_text=True)
        shown += "alert(1)" in page
        problems += [f"/public/community/{pk}: {p}" for p in inert(page)]
    assert not problems, "\n".join(problems)
    assert shown, "the payloads (escaped) are on the community boards"


def test_exports_are_downloads_never_pages(app, hostile_text):
    """CSV and Excel carry the payloads as text in an attachment: a browser never renders them."""
    admin = login(app, "admin")
    checked = 0
    for view in _entity_views(app):
        for fmt in ("csv", "xlsx"):
            response = admin.get(f"{view.route_base}/export/{fmt}")
            body = response.get_data()  # a streamed download: read and closed, as by a browser
            response.close()
            if response.status_code in (302, 403, 404):
                continue
            assert response.status_code == 200, (view.route_base, fmt)
            assert "html" not in response.mimetype, (view.route_base, fmt)
            assert "attachment" in response.headers.get("Content-Disposition", "")
            assert response.headers.get("X-Content-Type-Options", "nosniff") == "nosniff"
            checked += 1
            if fmt == "xlsx":
                from io import BytesIO

                from openpyxl import load_workbook

                sheet = load_workbook(BytesIO(body)).worksheets[0]
                assert not [c.coordinate for row in sheet.iter_rows() for c in row
                            if c.data_type == "f"], "a payload became a formula"
    print(f"\nexports checked: {checked}")
    assert checked >= 2 * len(_entity_views(app)) - 6
