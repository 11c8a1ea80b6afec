"""Drill-down links: from a figure's bar or card to the list of the rows behind it.

A link is the entity's own list page with Flask-AppBuilder filter arguments
(``/need/list/?_flt_3_status=已派单``). FAB silently drops an argument on a column its view does
not search, which would show every row under a figure that counted a few: so each filter is
looked up in the view's own search filters (its index there is the ``_flt_<index>_`` number),
and a link that cannot be made exact is not made at all (None).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from flask import current_app, g

from app import clock
from app.dashboards.figures import Period, parse_period
from app.views.entity import view_of

EQ, NOT_EQ, IN, GREATER, SMALLER = "eq", "neq", "in", "gt", "lt"
RELATION, MANY, FLAG, WITHIN = "rel_o_m", "rel_m_m", "flag", "within"
JUST_BEFORE = timedelta(microseconds=1)


def _text(value) -> str:
    if isinstance(value, datetime):  # a stored instant, as the list's search reads it
        return clock.to_local(value).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _listable(resource: str):
    """The resource's list view if the user may read it, else None — found and asked once per
    request: a dashboard links hundreds of bars and cards, and each check reads the user's roles."""
    found = g.setdefault("_gongjian_listable", {})
    if resource not in found:
        view = view_of(resource)
        if getattr(view, "_filters", None) is None:  # not a list (a dashboard, the recycle bin)
            view = None
        may = view is not None and current_app.appbuilder.sm.has_access(
            "can_read", view.class_permission_name)
        found[resource] = view if may else None
    return found[resource]


class ListLink:
    """A list page filtered by (column, filter arg name, value) triples: its URL, and the
    rows it lists as a query — the URL's own arguments handed to the view's filters as FAB
    reads them from the request (`get_filter_args`), so a number shown beside the link is the
    record count of the page it opens, by construction."""

    def __init__(self, view, args: list[tuple[str, str]]):
        self.view, self.args = view, args

    @property
    def url(self) -> str:
        return f"{self.view.route_base}/list/" + (f"?{urlencode(self.args)}" if self.args else "")

    def filters(self):
        """The view's filters set as FAB sets them from this URL: `_flt_<index>_<column>` with
        the values its query string carries, on the view's base filters."""
        filters = self.view.datamodel.get_filters(self.view.search_columns)
        values: dict[str, list[str]] = {}
        for name, value in self.args:
            values.setdefault(name, []).append(value)
        for name, given in values.items():
            index, column = name.removeprefix("_flt_").split("_", 1)
            filters.add_filter_index(column, int(index), given)
        return self.view._base_filters.get_joined_filters(filters)

    def query(self, *entities):
        """The listed rows (or `entities` over them: a sum, the ids), unordered."""
        datamodel = self.view.datamodel
        return datamodel.apply_filters(
            datamodel.session.query(*(entities or (datamodel.obj,))),
            datamodel.get_inner_filters(self.filters()))

    def count(self) -> int:
        """The record count the list page shows (bounded as there: "10,000+")."""
        return self.view.datamodel.query_count(None, self.filters())


def list_link(resource: str, *filters: tuple[str, str, object]) -> ListLink | None:
    """`/<resource>/list/` filtered by (column, filter arg name, value) triples — a list value
    gives an IN filter several values — or None when the user may not open that list or its
    view does not offer one of the filters."""
    view = _listable(resource)
    if view is None:
        return None
    offered = view._filters.get_search_filters()
    args = []
    for column, arg_name, value in filters:
        index = next((i for i, flt in enumerate(offered.get(column, ()))
                      if flt.arg_name == arg_name), None)
        if index is None or index > 9:  # FAB reads a one-digit index
            return None
        for item in value if isinstance(value, (list, tuple)) else [value]:
            args.append((f"_flt_{index}_{column}", _text(item)))
    return ListLink(view, args)


def list_url(resource: str, *filters: tuple[str, str, object]) -> str | None:
    """The URL of `list_link`, or None."""
    link = list_link(resource, *filters)
    return link and link.url


# --- the pieces figures share -------------------------------------------------------------------

def during(column: str, period: Period, datetime_column: bool = True) -> list[tuple]:
    """A column within the period, as the list's greater-than and smaller-than filters: the
    figures count `begins <= column < ends` (date-times) or `start <= column <= end` (dates)."""
    if datetime_column:
        return [(column, GREATER, period.begins - JUST_BEFORE), (column, SMALLER, period.ends)]
    return [(column, GREATER, period.start - timedelta(days=1)),
            (column, SMALLER, period.end + timedelta(days=1))]


def under(org_id: int | None) -> list[tuple]:
    return [("within", WITHIN, org_id)] if org_id else []


def month_period(month: str) -> Period:
    """'2026-07' as a period (one bar of a per-month chart)."""
    return parse_period(month)


def quarter_within(quarter: str, period: Period) -> Period:
    """The part of a quarter ('2026Q3') inside the period (one bar of a per-quarter chart)."""
    part = parse_period(quarter)
    return Period(part.code, max(part.start, period.start), min(part.end, period.end))
