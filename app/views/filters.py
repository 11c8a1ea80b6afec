"""The filters a list page and its API offer beyond FAB's own (FAB's `models/sqla/filters.py`):
a yes/no filter on a computed flag, and where a row sits in the organisation tree."""
from __future__ import annotations

import functools

from flask_appbuilder.exceptions import (
    InvalidColumnFilterFABException,
    InvalidOperationFilterFABException,
)
from flask_appbuilder.models.filters import BaseFilter, Filters
from flask_appbuilder.models.sqla.filters import SQLAFilterConverter
from sqlalchemy import false, inspect, select
from sqlalchemy.ext.hybrid import hybrid_property

from app.errors import storable_id
from app.i18n import lazy_gettext
from app.models.org import Organization
from app.security.scope import placed_under
from app.views.times import DATETIME_FILTERS


class FilterFlag(BaseFilter):
    """A yes/no filter on a computed flag (a hybrid property such as a need's `overdue`),
    evaluated in SQL like any column filter."""

    name = lazy_gettext("是否")
    arg_name = "flag"

    def apply(self, query, value):
        flag = getattr(self.model, self.column_name)
        if str(value).strip().lower() in ("1", "y", "yes", "true", "on", "是"):
            return query.filter(flag)
        return query.filter(~flag)


class FilterComputed(BaseFilter):
    """A computed column of several values (a hybrid property named in the model's
    `__computed_choices__`, such as an agreement's 有效状态) equal to one of them, in SQL."""

    name = lazy_gettext("等于")
    arg_name = "eq"

    def apply(self, query, value):
        return query.filter(getattr(self.model, self.column_name) == str(value).strip())


# The filter every list offers on where its rows sit in the organisation tree: a street's
# drill-down from a figure lists what its communities hold (`_flt_0_within=<node id>`).
WITHIN = "within"


class FilterWithin(BaseFilter):
    """Rows placed under an organisation node (itself included), by the model's scope
    declaration: the same predicate the figures count with."""

    name = lazy_gettext("位于（含下级）")
    arg_name = "within"

    def apply(self, query, value):
        node = storable_id(value)
        if node is None:
            return query.filter(false())
        path = self.datamodel.session.execute(
            select(Organization.path).where(Organization.id == node)).scalar()
        return query.filter(placed_under(self.model, path) if path else false())


class ColumnFilters(Filters):
    """A list's filters, where the API's `q` names each by its column's own operation. FAB's
    looks an operation up first in a process-wide map of the filter class last built under
    that name (`map_args_filter`): `gt` on a need's 登记时间 could be an integer column's
    FilterGreater, reading a wall-clock bound as UTC — a drill-down asked of the API then
    counted other rows than the page, eight hours off at each end of the month."""

    def rest_add_filters(self, data) -> None:
        for item in data:
            column, operation = item.get("col"), item.get("opr")
            if column not in self.search_columns:
                raise InvalidColumnFilterFABException(f"不能按「{column}」筛选")
            offered = [f for f in self._search_filters.get(column, ()) if f.arg_name == operation]
            if not offered:  # FAB's schema has checked that each names col, opr and value
                raise InvalidOperationFilterFABException(f"「{column}」没有筛选方式「{operation}」")
            self._add_filter(offered[0], item["value"])


class EntityFilterConverter(SQLAFilterConverter):
    conversion_table = (("is_flag", [FilterFlag]), ("is_computed", [FilterComputed]),
                        ("is_within", [FilterWithin]),
                        ("is_datetime", DATETIME_FILTERS)) + SQLAFilterConverter.conversion_table

    def convert(self, col_name):
        # FAB converts every column of the model again for each list request (the filters it
        # joins make a new Filters): once per column and data interface is enough. Filters
        # hold no request state; a new list each time, as FAB's callers may extend it.
        converted = self.datamodel.__dict__.setdefault("_converted_filters", {})
        if col_name not in converted:
            converted[col_name] = super().convert(col_name)
        found = converted[col_name]
        return None if found is None else list(found)


@functools.cache
def flags_of(model) -> tuple[str, ...]:
    """The model's computed yes/no flags (hybrid properties), filterable like columns (asked
    for every column of every list page: read once per model)."""
    return tuple(attr.__name__ for attr in inspect(model).all_orm_descriptors
                 if isinstance(attr, hybrid_property)
                 and attr.__name__ not in getattr(model, "__computed_choices__", {}))
