"""A list page's table and search form, made with as little work per row and per request as
their content allows (issue 30).

FAB's list template did per cell what a page needs once: each cell looked its formatter up
again (`PageFormatters.get` makes a new function each time), each row built three links with
`url_for`, translated six button texts and wrote a script of its own for its delete button;
its search form rendered every search field's HTML and translated every filter's name on each
request, though they change only with the language. Here a row's cells are formatted with the
column's formatter resolved once per page, its links are the page's link with the row's id put
in, and the search form's unchanging parts are made once per view and language.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from flask import current_app, request, url_for
from flask_appbuilder.widgets import ListWidget, SearchWidget
from flask_babel import get_locale, gettext
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup, escape
from werkzeug.routing import BuildError

# Stands for a row's id in the links built once per page.
_PK = "0gongjianpk0"


@dataclass(slots=True)
class Row:
    pk: object
    cells: list
    show: str | None
    edit: str | None
    delete: str | None


def _row_link(endpoint: str, suffix: str = ""):
    """`url_for(endpoint, pk=…)` for every row from one call: the page's link with the row's
    id in place of a marker (None when the view has no such page, as FAB's `safe_url_for`)."""
    try:
        head, _, tail = url_for(endpoint, pk=_PK).partition(_PK)
    except BuildError:
        return lambda pk: None
    return lambda pk: f"{head}{pk}{tail}{suffix}"


def _related_filters(filters) -> str:
    """FAB's `set_link_filters`: a related list (on a record's page) carries its filter on to
    the rows' show and edit pages."""
    parts = [f"_flt_0_{flt.column_name}={value}"
             for flt, value in (filters.get_filters_values() if filters else ())
             if flt.is_related_view]
    return "?" + "&".join(parts) if parts else ""


class EntityListWidget(ListWidget):
    """FAB's list table (its header, pager, actions and markup), each row made in Python."""

    template = "gongjian/widgets/list.html"

    def __call__(self, **kwargs):
        args = {**self.template_args, **kwargs}
        formatters = args.get("formatters_columns") or {}
        shown = [(column, formatters.get(column)) for column in args["include_columns"]]
        view, suffix = args["modelview_name"], _related_filters(args.get("filters"))
        show = _row_link(f"{view}.show", suffix)
        edit = _row_link(f"{view}.edit", suffix)
        delete = _row_link(f"{view}.delete")
        rows = [Row(pk, [shown_as(values[column]) if shown_as else values[column]
                         for column, shown_as in shown],
                    show(pk), edit(pk), delete(pk))
                for pk, values in zip(args["pks"], args["value_columns"])]
        return super().__call__(rows=rows, rows_html=partial(_rows_html, rows), **kwargs)


def _rows_html(rows, actions, can_show, can_edit, can_delete) -> Markup:
    """The table's rows in FAB's markup, written as one string: as a template loop, each cell,
    link and id was a step of Jinja's (a lookup, an escape, a yield), about a sixth of a list
    page's CPU. Every value is escaped as the template's autoescape did."""
    crud = can_show or can_edit or can_delete
    show_title, show_text = escape(gettext("Show record")), escape(gettext("Show"))
    edit_title, edit_text = escape(gettext("Edit record")), escape(gettext("Edit"))
    delete_title, delete_text = escape(gettext("Delete record")), escape(gettext("Delete"))
    lines = []
    for row in rows:
        pk, parts = escape(row.pk), ["<tr>"]
        if actions:
            parts.append(f'<td><input id="{pk}" class="action_check" name="rowid" value="{pk}"'
                         f' type="checkbox"></td>')
        if crud:
            parts.append('<td><center><div class="btn-group btn-group-xs" style="display: flex;">')
            if can_show and row.show:
                parts.append(f'<a href="{escape(row.show)}" class="btn btn-sm btn-default"'
                             f' data-toggle="tooltip" rel="tooltip" title="{show_title}">'
                             f'<span class="sr-only">{show_text}</span><i class="fa fa-search"></i></a>')
            if can_edit and row.edit:
                parts.append(f'<a href="{escape(row.edit)}" class="btn btn-sm btn-default"'
                             f' data-toggle="tooltip" rel="tooltip" title="{edit_title}">'
                             f'<span class="sr-only">{edit_text}</span><i class="fa fa-edit"></i></a>')
            if can_delete and row.delete:
                url = escape(row.delete)
                parts.append(f'<a id="btn-delete-{url}" href="#" class="btn btn-sm btn-default confirm'
                             f' gj-row-delete" rel="tooltip" title="{delete_title}" data-url="{url}">'
                             f'<span class="sr-only">{delete_text}</span><i class="fa fa-trash"></i></a>')
            parts.append("</div></center></td>")
        parts.extend(f"<td>{escape(cell)}</td>" for cell in row.cells)
        parts.append("</tr>")
        lines.append("".join(parts))
    return Markup("\n".join(lines))


# In the app's extensions: (route, search columns, language) -> the search form's labels and
# filters' names as JSON, and its fields' HTML (those that do not change).
SEARCH_FORMS_KEY = "gongjian.search_forms"


class EntitySearchWidget(SearchWidget):
    """FAB's search form. Its labels, its fields' HTML and its filters' names depend on the
    view and the language only (a GET list page's form holds no values; the active filters
    are written apart): they are made once per view and language. A field with a default of
    the moment (a time column's "now") is rendered on each request, and a form with a field
    that reads the database to render (FAB's QuerySelectField) is made whole on each
    request, as FAB does."""

    template = "gongjian/widgets/search.html"

    def __call__(self, **kwargs):
        args = {**self.template_args, **kwargs}
        form, columns = args["form"], tuple(args["include_cols"])
        key = (args.get("route_base"), columns, str(get_locale()))
        made = current_app.extensions.setdefault(SEARCH_FORMS_KEY, {})
        parts = made.get(key)
        if parts is None:
            parts = self._parts(form, columns)
            if request.method == "GET" and not any(
                    hasattr(form[column], "query_func") for column in columns):
                made[key] = parts
        labels, fields, names = parts
        fields = {**fields, **{c: str(form[c]()) for c in columns if c not in fields}}
        return super(SearchWidget, self).__call__(
            labels_json=labels, fields_json=_json(fields), filters_json=names,
            active_json=_json(self.filters.get_filters_values_tojson()), **kwargs)

    def _parts(self, form, columns) -> tuple[Markup, dict, Markup]:
        search = self.filters.get_search_filters()
        labels = {c: str(form[c].label.text) for c in columns}
        fields = {c: str(form[c]()) for c in columns if not callable(form[c].default)}
        names = {c: [str(flt.name) for flt in search[c]] for c in columns}
        return _json(labels), fields, _json(names)


def _json(value) -> Markup:
    """As Jinja's `tojson` writes a value into a page (safe inside a <script>)."""
    return htmlsafe_json_dumps(value, dumps=current_app.json.dumps)
