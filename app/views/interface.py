"""The scoped data interface of every business view and API (FAB keeps `SQLAInterface` in
`models/sqla/interface.py`): FAB's, with soft delete, filterable computed flags and the subtree
filter, bounded counts, and the shown related records loaded in bulk. Reads are already scoped
by the session (app/security/scope.py)."""
from __future__ import annotations

import enum
from functools import cache

from flask import current_app
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from sqlalchemy.orm import MANYTOONE, selectinload
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from app.errors import ID_RANGE, committed, storable_id
from app.security.scope import current_principal, related_rows
from app.views.filters import (
    WITHIN,
    ColumnFilters,
    EntityFilterConverter,
    FilterComputed,
    FilterFlag,
    FilterWithin,
    flags_of,
)

# From this many rows skipped on, a list page reads its ids first (`_deep_page`).
DEEP_OFFSET = 1000


@cache  # the mappers' relationships are fixed once configured; asked twice per page
def _key_to_id(model, name):
    """(related model, attribute of the foreign key) of a many-to-one by one column to the
    related row's id; None for any other relationship."""
    prop = model.__mapper__.relationships[name]
    if prop.direction is not MANYTOONE or prop.secondary is not None \
            or len(prop.local_columns) != 1 or [c.key for c in prop.remote_side] != ["id"]:
        return None
    column = next(iter(prop.local_columns))
    return prop.mapper.class_, model.__mapper__.get_property_by_column(column).key


def load_by_id(session, model, rows, names) -> None:
    """The related rows that `rows` (of `model`) show through the many-to-ones `names` (and,
    in turn, those that the related rows' captions read, `__list_loads__`): one statement per
    related model, by the ids the rows point at (`related_rows`: what a selectinload sends,
    without its cost — three of them were a fifth of a need-list page's CPU), each set on its
    row as loaded. A relationship already loaded on a row is left as it is, as a selectinload
    leaves it; any other kind of relationship is not loaded here."""
    wanted: dict[type, tuple[set, list]] = {}
    for name in names:
        key = _key_to_id(model, name)
        if key is None:
            continue
        target, fk = key
        ids, links = wanted.setdefault(target, (set(), []))
        for row in rows:
            if name not in instance_state(row).dict:
                pk = getattr(row, fk)
                ids.add(pk)
                links.append((row, name, pk))
    for target, (ids, links) in wanted.items():
        ids.discard(None)
        found = related_rows(session, target, ids) if ids else {}
        for row, name, pk in links:
            set_committed_value(row, name, found.get(pk))
        nested = getattr(target, "__list_loads__", ())
        if found and nested:
            load_by_id(session, target, list(found.values()), nested)


class BoundedCount(int):
    """A count stopped at a cap: more rows match than were counted. It pages like a number
    and prints as "10,000+"; the API reports the cap and `count_capped`."""

    def __new__(cls, cap: int, value: int | None = None):
        count = super().__new__(cls, max(cap + 1, value or 0))
        count.cap = cap
        return count

    @classmethod
    def at_least(cls, count: BoundedCount, value: int) -> BoundedCount:
        return cls(count.cap, max(int(count), value))

    def __str__(self) -> str:
        return f"{self.cap:,}+"

    __html__ = __str__


class ScopedInterface(SQLAInterface):
    """FAB's data interface with soft delete and filterable computed flags; reads are
    already scoped by the session."""

    filter_converter_class = EntityFilterConverter
    # The related records a page shows (its columns, and what the model's captions read),
    # loaded in one query per relationship instead of one per row; set by the view or API.
    shown: tuple[str, ...] = ()

    def show_columns_of(self, columns) -> None:
        self.shown = self.relations_shown_by(columns)

    def relations_shown_by(self, columns) -> tuple[str, ...]:
        mapper = self.obj.__mapper__
        roots = [c.split(".")[0] for c in columns]
        computed = any(r not in mapper.relationships and r not in mapper.column_attrs
                       for r in roots)
        return tuple(dict.fromkeys(
            [r for r in roots if r in mapper.relationships]
            + list(getattr(self.obj, "__list_loads__", ()) if computed else ())))

    def eager_loads(self, shown: tuple[str, ...] | None = None) -> list:
        """selectinload of each shown relationship (and of what the related row's caption reads).
        A relationship load, so the scope listener only drops deleted rows from it, as for a lazy
        load: the related record shown is the one the row points at. A page's many-to-ones are
        loaded by `load_by_id` instead; an export's chunks still come with these."""
        loads = []
        for name in self.shown if shown is None else shown:
            load = selectinload(getattr(self.obj, name))
            target = self.obj.__mapper__.relationships[name].mapper.class_
            nested = [load.selectinload(getattr(target, n))
                      for n in getattr(target, "__list_loads__", ())]
            loads += nested or [load]
        return loads

    def query(self, filters=None, order_column="", order_direction="", page=None,
              page_size=None, select_columns=None, outer_default_load=False):
        """FAB's list query, with a bounded count and the shown related records loaded in bulk."""
        query = self.session.query(self.obj)
        if page and page_size and page * page_size not in ID_RANGE:  # past any database's offset
            page = ID_RANGE.stop // page_size - 1
        count = self.query_count(query, filters, select_columns)
        query = self.apply_all(query, filters, order_column, order_direction, page, page_size,
                               select_columns, outer_default_load)
        if page and page_size and page * page_size >= DEEP_OFFSET and not select_columns \
                and not query._distinct:
            rows = self._deep_page(query)
        else:
            rows = query.options(*self.eager_loads(self._not_by_id())).all()
            rows = [getattr(row, self.obj.__name__, row) for row in rows]
            load_by_id(self.session, self.obj, rows, self.shown)
        if isinstance(count, BoundedCount) and page_size:
            # Past the counted rows (a deep page): the pager still reaches the next page, and
            # a short page is the last one, whose position gives the exact count.
            seen = (page or 0) * page_size + len(rows)
            if len(rows) < page_size and seen > count.cap:
                count = seen
            elif seen >= count:
                count = BoundedCount.at_least(count, seen + 1)
        return count, rows

    def _deep_page(self, query) -> list:
        """A page far into the list: its ids first, then its rows by id. The rows skipped are
        then read in the order's index alone; selected whole, PostgreSQL fetched each skipped
        row from the table (page 500 of the city's needs: 118 ms for its 10,000 skipped rows,
        1.5 ms for their ids)."""
        ids = [pk for (pk,) in query.with_entities(self.obj.id)]
        if not ids:
            return []
        found = {row.id: row for row in self.session.query(self.obj)
                 .filter(self.obj.id.in_(ids)).options(*self.eager_loads(self._not_by_id()))}
        load_by_id(self.session, self.obj, list(found.values()), self.shown)
        return [found[pk] for pk in ids if pk in found]

    def _not_by_id(self) -> tuple[str, ...]:
        """The shown relationships `load_by_id` does not load (none today): selectinloads."""
        return tuple(name for name in self.shown if _key_to_id(self.obj, name) is None)

    def query_count(self, query, filters=None, select_columns=None) -> int:
        """Exact up to LIST_COUNT_CAP; beyond it, counting millions of rows to print a number
        nobody reads would cost more than the page: "10,000+" (`BoundedCount`)."""
        # The ids alone: an index answers without reading the rows.
        inner = self._apply_inner_all(self.session.query(self.obj.id), filters,
                                      aliases_mapping={}).order_by(None)
        cap = current_app.config.get("LIST_COUNT_CAP")
        if not cap:
            return inner.count()
        count = inner.limit(cap + 1).count()
        return BoundedCount(cap) if count > cap else count

    def apply_order_by(self, query, order_column, order_direction, aliases_mapping=None,
                       bypass_many_to_many=False, add_pk=False):
        # A model's named orders (`__orders__`, a view's base_order): what a list opens on where
        # one column cannot say it. The user's own choice of column is FAB's, as before.
        named = getattr(self.obj, "__orders__", {}).get(order_column)
        if named is not None:
            return query.order_by(*named())
        return super().apply_order_by(query, order_column, order_direction, aliases_mapping,
                                      bypass_many_to_many, add_pk)

    def _apply_normal_col_select_option(self, query, column):
        # FAB loads only an API's listed columns; a listed property (a masked 身份证号) then
        # loads the column it reads row by row. Rows are loaded whole instead.
        return query

    @staticmethod
    def _get_attr_value(item, col):
        # FAB's reads a column's value twice (once to ask whether it is callable): a computed
        # column (a need's 逾期环节) was computed twice for every cell of a list page.
        if "." in col and not hasattr(item, col):
            return SQLAInterface._get_attr_value(item, col)
        value = getattr(item, col)
        if callable(value):
            return value()
        return value.value if isinstance(value, enum.Enum) else value

    def is_flag(self, col_name: str) -> bool:
        return col_name in flags_of(self.obj)

    def is_computed(self, col_name: str) -> bool:
        return col_name in getattr(self.obj, "__computed_choices__", {})

    def is_within(self, col_name: str) -> bool:
        return col_name == WITHIN and bool(self.obj.__scope__.org)

    def get_filters(self, search_columns=None, search_filters=None):
        # FAB honours only filter arguments on the model's columns: without this a filter on a
        # flag would be dropped in silence (and a drill-down list would show every row).
        filters = ColumnFilters(self.filter_converter_class, self,
                                search_columns=search_columns or [], search_filters=search_filters)
        for name in flags_of(self.obj):
            filters._all_filters[name] = [FilterFlag(name, self)]
        for name in getattr(self.obj, "__computed_choices__", {}):
            filters._all_filters[name] = [FilterComputed(name, self)]
        if self.is_within(WITHIN):
            filters._all_filters[WITHIN] = [FilterWithin(WITHIN, self)]
        return filters

    def delete(self, item, commit=True):
        self.delete_all([item])

    def delete_all(self, items):
        with committed(self.session, "所选记录已被他人修改，未删除；请刷新后查看"):
            for item in items:
                item.check_delete(self.session)
                item.soft_delete(current_principal().user_id)

    def get(self, id, filters=None, select_columns=None, outer_default_load=False):
        # Every show, edit, delete, action and API read by id comes here.
        if storable_id(id) is None:
            return None
        return super().get(storable_id(id), filters, select_columns, outer_default_load)

    def get_related_obj(self, col_name, value):
        # Query, never the identity map: an object loaded earlier for another purpose must
        # not slip past the scope criteria.
        model = self.get_related_model(col_name)
        if isinstance(value, (list, tuple)):  # a filter's values (an add form prefilled by one)
            value = value[0] if value else None
        if storable_id(value) is None:
            return None
        return self.session.execute(select(model).where(model.id == storable_id(value))
                                    ).scalar_one_or_none()
