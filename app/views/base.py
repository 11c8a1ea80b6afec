"""The base of every business view and API: a model declares itself, the base does the rest.

A view is `class MemberView(EntityView): model = Member` plus its columns. From the model the
base derives the route (`/member/`), the permission name shared with the API (`member`), the
Chinese labels, select boxes for coded columns and AJAX selects (searching within scope) for
every related record. Reads are scoped by the session (`app.security.scope`); deletes are soft;
business-rule errors become Chinese messages.
"""
from __future__ import annotations

import functools
import re
import sys

from flask import (
    Response,
    abort,
    current_app,
    flash,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_appbuilder import ModelRestApi, ModelView, expose
from flask_appbuilder.actions import action as bulk_action
from flask_appbuilder.api import get_list_schema, rison, safe
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.forms import FieldConverter
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import SQLAFilterConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name, protect
from flask_appbuilder.urltools import get_filter_args
from markupsafe import Markup, escape
from marshmallow import ValidationError as InvalidValue
from marshmallow import fields
from marshmallow_sqlalchemy.fields import Related, RelatedList
from sqlalchemy import Boolean, String, false, func, inspect, or_, select
from sqlalchemy.exc import DataError
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import selectinload
from wtforms import BooleanField, DateTimeField, DateTimeLocalField, Field, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from app.errors import (
    NUMBER_OUT_OF_RANGE,
    Conflict,
    DatabaseFailure,
    DomainError,
    committed,
    database_failure,
)
from app.exports import Export, TooManyRows, api_response, csv_response, query_for, xlsx_response
from app.extensions import db
from app.i18n import entity_text, gettext, lazy_gettext
from app.imports import REGISTRY, Importer, ImportRefused, keep_report, read_report
from app.models.base import Entity, choices_of, labels_of
from app.security.scope import (
    FieldRefused,
    current_principal,
    field_allowed,
    field_limits,
    may_write,
    placed_under,
    related_choices,
    unscoped,
)
from app.services.workflow import Forbidden, Workflow

# FAB turns a DateTime column into WTForms' DateTimeField (with its own date-time picker
# widget), which WTForms 3.3 deprecates — a warning each time a form with one is made (every
# list page with a time to search by). DateTimeLocalField is its non-deprecated subclass: same
# "%Y-%m-%d %H:%M:%S" rendering, and it reads what the picker sends. Set once, for every form FAB
# builds from a model (ours and FAB's own user views alike).
FieldConverter.conversion_table = tuple(
    (marker, DateTimeLocalField if field is DateTimeField else field, widget)
    for marker, field, widget in FieldConverter.conversion_table)

# One permission per operation, shared by a resource's view and API (ARCHITECTURE.md).
# A workflow move needs read access here; the transition table then says who may make it.
VIEW_PERMISSIONS = {
    "list": "read", "show": "read", "download": "read", "choices": "read", "transition": "read",
    "add": "add", "edit": "edit", "delete": "delete", "muldelete": "delete",
    "export": "export", "import_page": "import", "import_template": "import",
    "import_report": "import",
}
API_PERMISSIONS = {
    "get_list": "read", "get": "read", "info": "read", "transition": "read",
    "post": "add", "put": "edit", "delete": "delete",
}
CHOICES_PAGE_SIZE = 20


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


# The filter every list offers on where its rows sit in the organisation tree: a street's
# drill-down from a figure lists what its communities hold (`_flt_0_within=<node id>`).
WITHIN = "within"


class FilterWithin(BaseFilter):
    """Rows placed under an organisation node (itself included), by the model's scope
    declaration: the same predicate the figures count with."""

    name = lazy_gettext("位于（含下级）")
    arg_name = "within"

    def apply(self, query, value):
        from app.models.org import Organization

        node = storable_id(value)
        if node is None:
            return query.filter(false())
        path = self.datamodel.session.execute(
            select(Organization.path).where(Organization.id == node)).scalar()
        return query.filter(placed_under(self.model, path) if path else false())


class EntityFilterConverter(SQLAFilterConverter):
    conversion_table = (("is_flag", [FilterFlag]), ("is_within", [FilterWithin])) \
        + SQLAFilterConverter.conversion_table


@functools.cache
def flags_of(model) -> tuple[str, ...]:
    """The model's computed yes/no flags (hybrid properties), filterable like columns (asked
    for every column of every list page: read once per model)."""
    return tuple(attr.__name__ for attr in inspect(model).all_orm_descriptors
                 if isinstance(attr, hybrid_property))


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


# The widest integer any of the three databases takes (SQLite's and BIGINT's): a URL or filter
# id past it failed with SQLite's OverflowError (a 500); no row can have it, so it is not found.
ID_RANGE = range(-2 ** 63, 2 ** 63)


def storable_id(value):
    """`value` as a row id the database can compare, or None when no row can carry it."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number in ID_RANGE else None


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
        load: the related record shown is the one the row points at."""
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
        rows = query.options(*self.eager_loads()).all()
        rows = [getattr(row, self.obj.__name__, row) for row in rows]
        if isinstance(count, BoundedCount) and page_size:
            # Past the counted rows (a deep page): the pager still reaches the next page, and
            # a short page is the last one, whose position gives the exact count.
            seen = (page or 0) * page_size + len(rows)
            if len(rows) < page_size and seen > count.cap:
                count = seen
            elif seen >= count:
                count = BoundedCount.at_least(count, seen + 1)
        return count, rows

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

    def _apply_normal_col_select_option(self, query, column):
        # FAB loads only an API's listed columns; a listed property (a masked 身份证号) then
        # loads the column it reads row by row. Rows are loaded whole instead.
        return query

    def is_flag(self, col_name: str) -> bool:
        return col_name in flags_of(self.obj)

    def is_within(self, col_name: str) -> bool:
        return col_name == WITHIN and bool(self.obj.__scope__.org)

    def get_filters(self, search_columns=None, search_filters=None):
        # FAB honours only filter arguments on the model's columns: without this a filter on a
        # flag would be dropped in silence (and a drill-down list would show every row).
        filters = super().get_filters(search_columns, search_filters)
        for name in flags_of(self.obj):
            filters._all_filters[name] = [FilterFlag(name, self)]
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


# --- related records: AJAX selects that search within scope -------------------------------

class AjaxSelectWidget:
    """A <select> that select2 fills from the view's `choices` endpoint as the user types."""

    def __call__(self, field, **kwargs):
        chosen = field.data if field.multiple else [field.data]
        current = "".join(f'<option value="{row.id}" selected>{escape(str(row))}</option>'
                          for row in chosen or () if row is not None)
        attrs = {
            "id": field.id, "name": field.name, "class": "form-control gj-ajax-select",
            "data-url": field.url, "data-placeholder": gettext("输入关键字搜索"),
        }
        html = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
        if field.multiple:
            return Markup(f'<select {html} multiple>{current}</select>')
        return Markup(f'<select {html}><option value=""></option>{current}</select>')


class AjaxSelectField(Field):
    """A many-to-one field (or, `multiple`, a many-to-many one) whose submitted ids are loaded
    from the same choices it offers (`related_choices`): an id the user may not pick is refused
    like one that does not exist."""

    widget = AjaxSelectWidget()

    def __init__(self, label=None, validators=None, owner=None, relation="", url="",
                 required=False, multiple=False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.owner, self.relation, self.url, self.required = owner, relation, url, required
        self.multiple = multiple

    def process_formdata(self, valuelist):
        self.data = [] if self.multiple else None
        raws = [v for v in valuelist if v] if self.multiple else valuelist[:1]
        if not raws or not raws[0]:
            return
        try:
            pks = {int(raw) for raw in raws}
        except ValueError:
            raise ValueError(gettext("所选记录无效")) from None
        stmt = related_choices(self.owner, self.relation)
        target = stmt.column_descriptions[0]["entity"]
        rows = db.session.execute(stmt.where(target.id.in_(pks))).scalars().all()
        if len(rows) != len(pks):
            raise ValueError(gettext("所选%(field)s不存在或超出您的数据范围", field=self.label.text))
        self.data = rows if self.multiple else rows[0]

    def pre_validate(self, form):
        if self.required and not self.data:
            raise ValidationError(gettext("请选择%(field)s", field=self.label.text))


def choices_response(stmt):
    """One page of select2 choices from `related_choices`, searched by name as the user types."""
    target = stmt.column_descriptions[0]["entity"]
    term = (request.args.get("q") or "").strip()
    page = min(max(request.args.get("page", 1, type=int), 1), 10 ** 6)
    if request.args.get("id"):  # the label of a value already chosen
        chosen = storable_id(request.args["id"])
        stmt = stmt.where(false() if chosen is None else target.id == chosen)
    if term:
        text_cols = [getattr(target, c) for c in ("name", "label", "code", "title")
                     if hasattr(target, c)]
        stmt = stmt.where(or_(*[c.contains(term, autoescape=True) for c in text_cols]))
    order = getattr(target, "name", None) or getattr(target, "label", None) or target.id
    rows = db.session.execute(
        stmt.order_by(order, target.id).offset((page - 1) * CHOICES_PAGE_SIZE)
        .limit(CHOICES_PAGE_SIZE + 1)).scalars().all()
    return jsonify(results=[{"id": r.id, "text": str(r)} for r in rows[:CHOICES_PAGE_SIZE]],
                   pagination={"more": len(rows) > CHOICES_PAGE_SIZE})


def checked_by(normalize):
    """A form validator from one of `app.validators`' normalisers (Chinese message inline)."""
    def check(form, field):
        try:
            field.data = normalize(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    return check


def _shown(value):
    """An empty value reads as empty and related rows as their names — FAB would print the raw
    Python value ("None", "[]")."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return "、".join(str(v) for v in value)
    return value


class PageFormatters(dict):
    """The list and show pages ask `formatters_columns.get(column)`: every column without a
    formatter of its own gets `_shown`. Exports test `column in formatters` and are unaffected."""

    def get(self, key, default=None):
        return super().get(key, default or _shown)


def _display_choice(choices):
    def display(value):
        return gettext(choices[value]) if value in choices else (value or "")
    display.choices = choices  # exports write the same labels in SQL (app/exports.py)
    return display


def list_args(view) -> tuple[str, str, int | None, int]:
    """A list page's order, page and page size from its URL (`_oc_/_od_/page_/psize_<View>`),
    made safe: FAB's parsers fail with a 500 on a non-number, take any page size (100,000 rows
    made a 15.8 MB page), and hand an unknown order column ("name;drop") to SQL. An order
    column the view does not offer falls back to its default order; the page size is clamped to
    what the API allows (FAB_API_MAX_PAGE_SIZE); a page past any database's integers is empty."""
    name = view.__class__.__name__
    order_column = request.args.get(f"_oc_{name}", "")
    order_direction = request.args.get(f"_od_{name}", "")
    if order_column not in (view.order_columns or ()) or order_direction not in ("asc", "desc"):
        order_column, order_direction = "", ""
    page = request.args.get(f"page_{name}", type=int)
    page = None if page is None else max(page, 0)
    page_size = clamp_page_size(request.args.get(f"psize_{name}", type=int) or view.page_size)
    if page is not None and page * page_size not in ID_RANGE:
        page = ID_RANGE.stop // page_size - 1
    return order_column, order_direction, page, page_size


def check_page_args() -> None:
    """FAB's edit and show pages read every `page_*`/`psize_*` argument with int() (for the
    related lists they may show): one that is not a number is a bad request, not a 500."""
    for key, value in request.args.items():
        if key.startswith(("page_", "psize_")) and not re.fullmatch(r"-?\d{1,18}", value):
            abort(400)


def clamp_page_size(size: int) -> int:
    return min(max(size, 1), current_app.config.get("FAB_API_MAX_PAGE_SIZE") or 100)


def directory_view_of(session, item, columns):
    """The columns of `columns` that `item` shows to the acting user: all of them on a row it
    owns, the model's directory columns on a row it reads only through the directory."""
    allowed = getattr(type(item), "__directory_columns__", None)
    if allowed is None or may_write(session, item):
        return columns
    return [c for c in columns if c in allowed]


class EntityView(ModelView):
    """Base of every business ModelView. Subclasses set `model` and their columns, and
    `workflow` when the model's status moves through a transition table."""

    model: type[Entity] = None
    workflow: Workflow | None = None
    # Extra endpoints of a view and the operation each needs, e.g. {"link": "edit"}.
    permission_of: dict[str, str] = {}
    page_size = 20
    show_template = "gongjian/show.html"
    list_template = "gongjian/list.html"
    # Export: the columns written (default: the show page's). Import: the columns a
    # spreadsheet fills, in template order, and the natural key a row updates by.
    export_columns: list[str] | None = None
    import_columns: list[str] = []
    import_key: str | None = None
    import_examples: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("model")
        if model is None:
            return
        if not hasattr(model, "__scope__"):
            raise TypeError(f"{model.__name__} declares no __scope__: it cannot get a view")
        resource = model.__tablename__
        cls.datamodel = ScopedInterface(model)
        cls.route_base = f"/{resource}"
        cls.class_permission_name = resource
        cls.method_permission_name = {**VIEW_PERMISSIONS, **cls.permission_of}
        cls.list_title = cls.list_title or entity_text("%(entity)s列表", model.__label__)
        cls.show_title = cls.show_title or entity_text("查看%(entity)s", model.__label__)
        cls.add_title = cls.add_title or entity_text("新增%(entity)s", model.__label__)
        cls.edit_title = cls.edit_title or entity_text("编辑%(entity)s", model.__label__)
        cls.label_columns = {**labels_of(model), **(cls.__dict__.get("label_columns") or {})}
        coded = choices_of(model)
        cls.formatters_columns = PageFormatters({
            **{key: _display_choice(c) for key, c in coded.items()},
            **(cls.__dict__.get("formatters_columns") or {}),
        })
        extra = {}
        for key, choices in coded.items():
            column = model.__table__.columns[key]
            pairs = [SelectChoice(code, lazy_gettext(text)) for code, text in choices.items()]
            if column.nullable:
                pairs.insert(0, SelectChoice("", lazy_gettext("（无）")))
            # Coerce "" to None (not a filter, which runs after the choice check): the
            # "（无）" choice of a nullable column must match the None it stands for.
            extra[key] = SelectField(cls.label_columns.get(key, key), choices=pairs,
                                     widget=Select2Widget(),
                                     coerce=lambda v: v or None)
        for prop in model.__mapper__.relationships:
            if prop.direction.name == "MANYTOONE" and issubclass(prop.mapper.class_, Entity):
                nullable = all(c.nullable for c in prop.local_columns)
                extra[prop.key] = AjaxSelectField(
                    cls.label_columns.get(prop.key, prop.key), owner=model, relation=prop.key,
                    url=f"/{resource}/choices/{prop.key}", required=not nullable)
            elif prop.direction.name == "MANYTOMANY" and issubclass(prop.mapper.class_, Entity):
                extra[prop.key] = AjaxSelectField(
                    cls.label_columns.get(prop.key, prop.key), owner=model, relation=prop.key,
                    url=f"/{resource}/choices/{prop.key}", multiple=True)
        # The search form too: a filter on a related record searches it, never lists it all.
        searched = cls.__dict__.get("search_columns") or ()
        cls.search_form_extra_fields = {k: v for k, v in extra.items() if k in searched}
        # Every list placed in the tree can be narrowed to a node's subtree (figures link here).
        if searched and model.__scope__.org and WITHIN not in searched:
            from app.models.org import Organization

            cls.search_columns = [*searched, WITHIN]
            cls.label_columns[WITHIN] = lazy_gettext("所属党组织")
            cls.search_form_extra_fields[WITHIN] = AjaxSelectField(
                cls.label_columns[WITHIN], owner=Organization, relation="parent",
                url="/organization/choices/parent")
        for flag in flags_of(model):
            if flag in searched:
                cls.search_form_extra_fields[flag] = SelectField(
                    cls.label_columns.get(flag, flag),
                    choices=[SelectChoice("1", lazy_gettext("是")), SelectChoice("0", lazy_gettext("否"))])
        # An unticked checkbox sends nothing, and FAB makes a non-nullable column required:
        # "否" could never be saved. A plain checkbox means False when unticked.
        for column in model.__table__.columns:
            if isinstance(column.type, Boolean) and column.key not in extra:
                default = column.default.arg if column.default is not None else False
                extra[column.key] = BooleanField(cls.label_columns.get(column.key, column.key),
                                                 default=bool(default))
        cls.add_form_extra_fields = {**extra, **(cls.__dict__.get("add_form_extra_fields") or {})}
        cls.export_columns = cls.__dict__.get("export_columns") or cls.__dict__.get("show_columns")
        cls.extra_args = {"importable": bool(cls.__dict__.get("import_columns"))}
        workflow = cls.__dict__.get("workflow")
        for transition in workflow.transitions if workflow else ():
            if transition.bulk:
                name = f"bulk_{transition.name}"
                setattr(cls, name, bulk_action(
                    name, transition.label, transition.confirm or f"确定对所选记录执行“{transition.label}”吗？",
                    "fa-check", single=False)(_bulk_transition(transition.name)))
                cls.method_permission_name[name] = "read"
        cls.edit_form_extra_fields = {**extra, **(cls.__dict__.get("edit_form_extra_fields") or {})}

    def _init_properties(self):
        super()._init_properties()
        self.datamodel.show_columns_of(self.list_columns)

    def _list(self, **kwargs):
        """FAB's list, with its URL arguments read by `list_args`."""
        order_column, order_direction, page, page_size = list_args(self)
        get_filter_args(self._filters)
        widgets = self._get_list_widget(filters=self._filters, order_column=order_column,
                                        order_direction=order_direction, page=page,
                                        page_size=page_size, **kwargs)
        form = self.search_form.refresh()
        self.update_redirect()
        return self._get_search_widget(form=form, widgets=widgets)

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="",
                         page=None, page_size=None, widgets=None, **kwargs):
        # Also reached without `_list` (a related list on a show page): bounded here too.
        page_size = clamp_page_size(page_size or self.page_size)
        return super()._get_list_widget(filters, actions, order_column, order_direction, page,
                                        page_size, widgets, **kwargs)

    # --- field-level rights (roles.FIELD_RIGHTS): the edit form offers what may change ---

    @property
    def edit_form(self):
        """The edit form, without the fields the user's roles may not change: FAB builds one
        form class per view; a restricted role gets a subclass (cached per set of fields)
        whose other fields are removed. The write check refuses them anyway."""
        full = self.__dict__.get("_edit_form")
        if full is None or not has_request_context():
            return full
        limits = field_limits(self.model)
        if limits is None:
            return full
        cache = self.__dict__.setdefault("_restricted_forms", {})
        if limits not in cache:
            hidden = {name: None for name in dir(full)
                      if hasattr(getattr(full, name, None), "field_class")
                      and not field_allowed(self.model, name, limits)}
            cache[limits] = type(full.__name__, (full,), hidden)
        return cache[limits]

    @edit_form.setter
    def edit_form(self, form):
        self.__dict__["_edit_form"] = form

    def _edit(self, pk):
        # A row one may only read (the directory: every unit, every node) has no edit form for
        # one: not found, as a row out of scope, rather than a form filled and then refused.
        item = self.datamodel.get(pk)
        if item is None or not may_write(self.datamodel.session, item):
            abort(404)
        check_page_args()
        return super()._edit(pk)

    def _get_show_widget(self, pk, item, widgets=None, actions=None, show_fieldsets=None):
        # A row read only through the directory shows its directory columns (the model's
        # `__directory_columns__`), as the API's read of it does.
        columns = directory_view_of(self.datamodel.session, item, self.show_columns)
        if columns is self.show_columns:
            return super()._get_show_widget(pk, item, widgets, actions, show_fieldsets)
        widgets = widgets or {}
        widgets["show"] = self.show_widget(
            pk=pk, label_columns=self.label_columns, include_columns=columns,
            value_columns=self.datamodel.get_values_item(item, columns),
            formatters_columns=self.formatters_columns, actions=actions or self.actions,
            fieldsets=None, modelview_name=self.__class__.__name__)
        return widgets

    def _get_edit_widget(self, form, exclude_cols=None, widgets=None):
        widgets = widgets or {}
        widgets["edit"] = self.edit_widget(
            form=form, include_cols=[c for c in self.edit_columns if c in form],
            exclude_cols=exclude_cols or [], fieldsets=self.edit_fieldsets)
        return widgets

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename):
        """FAB's file download serves any name in UPLOAD_FOLDER to anyone who may read the
        resource, and fails with a 500 on a name it did not make. No business model has FAB
        file columns (an agreement's scan and a meeting's attachments have routes of their
        own, checked by scope): there is nothing to download here."""
        abort(404)

    # --- writes: business rules and scope are checked at the flush; errors are messages ---

    def _flush(self, item):
        # Business rules and scope run at the flush; FAB's add/edit commits next.
        with committed(self.datamodel.session, commit=False) as session:
            session.add(item)

    def _fill_form_exclude_cols(self, exclude_cols, form):
        # A form opened from a related record's page (`?_flt_0_<field>=<id>`) carries that
        # record hidden: one the user may not read does not exist.
        super()._fill_form_exclude_cols(exclude_cols, form)
        if any(getattr(form, key).data is None for key in exclude_cols if hasattr(form, key)):
            abort(404)

    def process_form(self, form, is_created):
        # An empty box means no value: store NULL, not "", or every edit would record
        # None → "" for each optional field left empty.
        columns = self.model.__table__.columns
        for field in form:
            if field.data == "" and field.name in columns and columns[field.name].nullable:
                field.data = None

    def pre_add(self, item):
        self._flush(item)

    def pre_update(self, item):
        self._flush(item)

    # --- data out and in (app/exports.py, app/imports.py) ---

    @expose("/export/<fmt>")
    @has_access
    def export(self, fmt):
        """The list as it is filtered and ordered, as CSV (`?encoding=gb18030`, `?headers=keys`
        for English keys) or Excel."""
        if fmt not in ("csv", "xlsx"):
            abort(404)
        filters = self.datamodel.get_filters(self.search_columns)
        get_filter_args(filters)
        order = list_args(self)[:2]
        export = Export(self, query_for(self, filters, *order), self.export_columns,
                        english_keys=request.args.get("headers") == "keys")
        described = {k: v for k, v in request.args.items() if k.startswith(("_flt_", "_oc_", "_od_"))}
        if fmt == "csv":
            encoding = "gb18030" if request.args.get("encoding") == "gb18030" else "utf-8-sig"
            return csv_response(self, export, described, encoding)
        try:
            return xlsx_response(self, export, described)
        except TooManyRows as exc:
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.endpoint}.list", **request.args))

    @expose("/import/", methods=["GET", "POST"])
    @has_access
    def import_page(self):
        importer = self._importer()
        outcome = None
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                flash("请选择要导入的文件", "danger")
            else:
                try:
                    outcome = importer.run(upload.filename, upload.read(),
                                           dry_run=bool(request.form.get("dry_run")))
                except ImportRefused as exc:
                    flash(str(exc), "danger")
                else:
                    if outcome.written:
                        flash(f"导入成功：新增 {outcome.created} 条，更新 {outcome.updated} 条", "success")
                    elif outcome.ok:
                        flash(f"预览：将新增 {outcome.created} 条，更新 {outcome.updated} 条（未写入）", "info")
                    else:
                        flash(f"发现 {len(outcome.problems)} 处错误，未导入任何数据", "danger")
                        session["import_report"] = keep_report(outcome, importer)
        return self.render_template("gongjian/import.html", title=f"导入{self.model.__label__}",
                                    importer=importer, outcome=outcome,
                                    resource=self.class_permission_name)

    @expose("/import/template")
    @has_access
    def import_template(self):
        body = self._importer().template()
        return Response(body, headers={
            "Content-Disposition": f"attachment; filename={self.class_permission_name}-template.xlsx"},
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @expose("/import/report")
    @has_access
    def import_report(self):
        body = read_report(session.get("import_report"))
        if body is None:
            abort(404)
        return Response(body, mimetype="text/csv; charset=utf-8", headers={
            "Content-Disposition": f"attachment; filename={self.class_permission_name}-errors.csv"})

    def _importer(self) -> Importer:
        if not self.import_columns:
            abort(404)
        return REGISTRY.get(self.class_permission_name) or Importer(self)

    def import_key_of(self, value):
        """The natural key as stored (overridden where it is normalised)."""
        return value

    def import_lookup(self, session, key):
        """The live row a natural key names, among all rows (the write check then decides).
        Without autoflush: a flush inside `unscoped()` skips the write check, and the rows the
        file changed before this one (another community's unit, moved into one's own) were
        written unchecked (issue 17)."""
        with unscoped(), session.no_autoflush:
            return session.execute(select(self.model).where(
                getattr(self.model, self.import_key) == key)).scalar_one_or_none()

    # --- workflow moves: buttons on the show page, a form for moves that ask for input ---

    def _show(self, pk):
        check_page_args()
        widgets = super()._show(pk)
        if self.workflow is not None:
            widgets["transitions"] = self.workflow.available(self.datamodel.get(pk))
        return widgets

    @expose("/transition/<int:pk>/<name>", methods=["GET", "POST"])
    @has_access
    def transition(self, pk, name):
        item = self.datamodel.get(pk)
        if item is None or self.workflow is None or name not in self.workflow.by_name:
            abort(404)
        move = self.workflow.by_name[name]
        if request.method == "POST":
            try:
                self.workflow.run(self.datamodel.session, item, name, _submitted())
            except DomainError as exc:
                flash(str(exc), "danger")
                if not move.fields:
                    return redirect(url_for(f"{self.endpoint}.show", pk=pk))
            else:
                flash(f"已{move.label}", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return self.render_template("gongjian/transition.html", item=item, move=move,
                                    resource=self.class_permission_name, pk=pk,
                                    title=f"{move.label}：{item}", values=request.form)

    # --- related-record choices ---

    @expose("/choices/<field>")
    @has_access
    def choices(self, field):
        offered = {name for name, unbound in self.add_form_extra_fields.items()
                   if getattr(unbound, "field_class", None) is AjaxSelectField}
        for move in self.workflow.transitions if self.workflow else ():
            offered |= {f.relation for f in move.fields if f.relation}
        if field not in offered:
            abort(404)
        return choices_response(related_choices(self.model, field))

    # --- actions: FAB's handlers skip base filters; ours see only rows in scope ---

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name, pk):
        if self.datamodel.get(self._deserialize_pk_if_composite(pk)) is None:
            abort(404)
        return super().action(name, pk)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        name = request.form.get("action", "")
        if name not in self.actions:
            abort(404)
        if not self.appbuilder.sm.has_access(self.get_action_permission_name(name),
                                             self.class_permission_name):
            abort(403)
        items = [self.datamodel.get(self._deserialize_pk_if_composite(pk))
                 for pk in request.form.getlist("rowid")]
        # All or nothing: one id out of scope (or gone) and the whole action is refused.
        if not items or any(item is None for item in items):
            abort(404)
        return self.actions[name].func(items)

    @bulk_action("muldelete", lazy_gettext("删除"),
                 lazy_gettext("确定删除所选记录吗？删除后可由管理员从回收站恢复。"), "fa-trash",
                 single=False)
    def muldelete(self, items):
        try:
            self.datamodel.delete_all(items)
            flash(f"已删除 {len(items)} 条记录", "success")
        except DomainError as exc:
            flash(str(exc), "danger")
        self.update_redirect()
        return redirect(self.get_redirect())


def _submitted() -> dict:
    """A form's fields: one value as a string, several (a multiple select) as a list."""
    return {key: values if len(values) > 1 else values[0]
            for key, values in request.form.lists() if key != "csrf_token"}


def _bulk_transition(name: str):
    def run(self, items):
        moved, refused = 0, []
        for item in items:
            try:
                self.workflow.run(self.datamodel.session, item, name)
                moved += 1
            except DomainError as exc:
                refused.append(f"{item}：{exc}")
        if moved:
            flash(f"已处理 {moved} 条记录", "success")
        for reason in refused:
            flash(reason, "danger")
        self.update_redirect()
        return redirect(self.get_redirect())
    run.__name__ = f"bulk_{name}"
    return run


def _as_text(value):
    """A filter value for a text column: numbers as their text (lists item by item)."""
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class ExistingRelated(Related):
    """A related record named by its id — only an existing one. marshmallow-sqlalchemy would
    build a new row from a JSON object or an unknown id (and fail with a 500 on odd keys): an
    API write must never create the record it points at. (Hostile-input finding, issue #10.)"""

    def _deserialize(self, value, *args, **kwargs):
        key = self.related_keys[0].key
        if isinstance(value, dict) and set(value) == {key}:
            value = value[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValue("应为关联记录的编号（整数）")
        found = self.session.get(self.related_model, value)
        if found is None:
            raise InvalidValue("关联记录不存在或超出您的数据范围")
        return found


class EntityApi(ModelRestApi):
    """Base of every business REST resource, sharing the view's permission name."""

    model: type[Entity] = None
    allow_browser_login = True
    page_size = 20
    # Attributes accepted on add (required) and edit, never returned (e.g. 身份证号 in clear).
    write_only_fields: tuple[str, ...] = ()
    # Extra endpoints of an API and the operation each needs, as for the view.
    permission_of: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("model")
        if model is None:
            return
        if not hasattr(model, "__scope__"):
            raise TypeError(f"{model.__name__} declares no __scope__: it cannot get an API")
        resource = model.__tablename__
        cls.datamodel = ScopedInterface(model)
        cls.resource_name = resource
        cls.class_permission_name = resource
        cls.method_permission_name = {**API_PERMISSIONS, **cls.permission_of}
        cls.label_columns = {**labels_of(model), **(cls.__dict__.get("label_columns") or {})}

    def _init_properties(self):
        super()._init_properties()
        self.datamodel.show_columns_of(self.list_columns)

    def _handle_filters_args(self, rison_args):
        # Rison reads `value:12345` as a number: against a text column PostgreSQL refuses the
        # comparison (varchar = numeric: a 500). A text column is searched with text.
        filters = super()._handle_filters_args(rison_args)
        columns = self.model.__table__.columns
        for i, flt in enumerate(filters.filters):
            column = columns.get(getattr(flt, "column_name", None) or "")
            if column is not None and isinstance(column.type, String):
                filters.values[i] = _as_text(filters.values[i])
        return filters

    def pre_get(self, data):
        item = self.datamodel.session.get(self.model, data["id"])
        if item is not None:
            shown = directory_view_of(self.datamodel.session, item, list(data["result"]))
            data["result"] = {k: v for k, v in data["result"].items() if k in shown}

    def pre_get_list(self, data):
        # A bounded count (app/views/base.py BoundedCount): the cap, said to be one.
        if isinstance(data.get("count"), BoundedCount):
            data["count"], data["count_capped"] = data["count"].cap, True

    def _init_model_schemas(self):
        super()._init_model_schemas()
        for attr, required in (("add_model_schema", True), ("edit_model_schema", False)):
            schema = getattr(self, attr)
            extra = {name: fields.String(required=required, load_only=True)
                     for name in self.write_only_fields}
            if extra:
                base = type(schema)
                # FAB's schema accepts only the names in its Meta.fields: a field declared
                # but not listed there is refused as "Unknown field", so list it too.
                meta = type("Meta", (base.Meta,),
                            {"fields": [*(base.Meta.fields or ()), *extra]})
                setattr(self, attr, type(base.__name__, (base,), {**extra, "Meta": meta})())
            # A missing or empty required field is told in Chinese, by its label.
            for name, schema_field in getattr(self, attr).fields.items():
                related = schema_field.inner if isinstance(schema_field, RelatedList) else schema_field
                if type(related) is Related:
                    related.__class__ = ExistingRelated
                label = str(self.label_columns.get(name, name))
                schema_field.error_messages = {**schema_field.error_messages,
                                               "required": f"请填写{label}",
                                               "null": f"{label}不能为空"}

    def _get_list_related_field(self, field, filter_rel_field, page=None, page_size=None):
        """`_info`'s choices for a related field: the same ones the form offers."""
        stmt = related_choices(self.model, field.name)
        target = stmt.column_descriptions[0]["entity"]
        page, page_size = self._sanitize_page_args(page, page_size)
        if page * page_size not in ID_RANGE:  # an offset no database takes (MariaDB: a syntax error)
            page = ID_RANGE.stop // page_size - 1
        session = self.datamodel.session
        count = session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
        rows = session.execute(stmt.order_by(target.id).offset(page * page_size)
                               .limit(page_size)).scalars()
        return count, [{"id": row.id, "value": str(row)} for row in rows]

    def response_500(self, message=None):
        # FAB's @safe turns every exception of an endpoint into a 500 "Fatal error"; a database
        # that failed under the request (full, read-only, restarting) is told as such (503).
        exc = sys.exc_info()[1]
        told = database_failure(exc)
        if told is not None:
            return self.response(503, message=told)  # rolled back at teardown (app/errors.py)
        if isinstance(exc, OverflowError):  # a number no database column holds (app/errors.py)
            self.datamodel.session.rollback()
            return self.response_400(message=NUMBER_OUT_OF_RANGE)
        return super().response_500(message)

    def _refusing(self, handler, *args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (DomainError, UnicodeEncodeError, OverflowError, DataError) as exc:
            self.datamodel.session.rollback()
            if isinstance(exc, DatabaseFailure):
                return self.response(503, message=str(exc))
            if isinstance(exc, FieldRefused):  # a field the role may not change: a right it lacks
                return self.response(403, message=str(exc))
            if isinstance(exc, DomainError):
                return self.response_422(message=str(exc))
            if isinstance(exc, UnicodeEncodeError):  # JSON may carry lone surrogates ("\ud800")
                return self.response_422(message="内容含有无法保存的字符（孤立的代理字符），请检查后重试")
            # OverflowError, DataError: a JSON integer past the column's range
            return self.response_422(message=NUMBER_OUT_OF_RANGE)

    def pre_add(self, item):
        self._flush(item)

    def pre_update(self, item):
        self._flush(item)

    def _flush(self, item):
        with committed(self.datamodel.session, commit=False) as session:
            session.add(item)

    def post_headless(self):
        return self._refusing(super().post_headless)

    def put_headless(self, pk):
        return self._refusing(super().put_headless, pk)

    @expose("/<int:pk>/transition/<name>", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk, name):
        """Make a workflow move; the JSON body carries the move's fields.
        ---
        post:
          description: >-
            Make a workflow move (提交、审核、派单…) on the row; the body carries the move's fields
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          - in: path
            schema:
              type: string
            name: name
          requestBody:
            required: false
            content:
              application/json:
                schema:
                  type: object
          responses:
            200:
              description: The row after the move
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        type: object
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            404:
              $ref: '#/components/responses/404'
            409:
              description: Someone else moved the row first
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message:
                        type: string
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        item = self.datamodel.get(pk)
        workflow = getattr(self, "workflow", None)
        if item is None or workflow is None or name not in workflow.by_name:
            return self.response_404()
        try:
            workflow.run(self.datamodel.session, item, name, request.get_json(silent=True) or {})
        except Forbidden as exc:
            return self.response(403, message=str(exc))
        except DatabaseFailure as exc:
            return self.response(503, message=str(exc))
        except Conflict as exc:
            return self.response(409, message=str(exc))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, result=self.show_model_schema.dump(item))

    @expose("/export/<fmt>", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    @rison(get_list_schema)
    def export(self, fmt, **kwargs):
        """All rows the list would give for the same `q`, as CSV or Excel (app/exports.py).
        ---
        get:
          description: >-
            Every row the list would give for the same `q`, as CSV (UTF-8 with BOM) or Excel
          parameters:
          - in: path
            schema:
              type: string
              enum: [csv, xlsx]
            name: fmt
          - in: query
            name: q
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/get_list_schema'
          responses:
            200:
              description: The rows as a download
              content:
                text/csv:
                  schema:
                    type: string
                application/vnd.openxmlformats-officedocument.spreadsheetml.sheet:
                  schema:
                    type: string
                    format: binary
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        return api_response(self, entity_view(self.class_permission_name), fmt, kwargs["rison"])

    def delete_headless(self, pk):
        return self._refusing(super().delete_headless, pk)


def entity_view(resource: str):
    """The list view of a resource: its columns, labels and formatters make the file, whichever
    way it is asked for."""
    for view in current_app.appbuilder.baseviews:
        if isinstance(view, EntityView) and view.class_permission_name == resource:
            return view
    return None
