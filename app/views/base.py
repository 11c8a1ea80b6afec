"""The base of every business page: a model declares itself, the base does the rest.

A view is `class MemberView(EntityView): model = Member` plus its columns. From the model the
base derives (app/views/entity.py, shared with the API) the route (`/member/`), the permission
name shared with the API (`member`) and the Chinese labels; here, select boxes for coded columns
and AJAX selects (searching within scope) for every related record (app/views/fields.py), the
formatters (app/views/formatters.py), the search form with its subtree filter, the workflow's
bulk moves and, in app/views/transfer.py, export and import. Reads are scoped by the session
(`app.security.scope`); deletes are soft; business-rule errors become Chinese messages.

The names other modules imported from here before the cut are still importable from here.
"""
from __future__ import annotations

from flask import abort, flash, has_request_context, redirect, request, url_for
from flask_appbuilder import ModelView, expose
from flask_appbuilder.actions import action as bulk_action
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import get_filter_args

from app.api.base import EntityApi, ExistingRelated
from app.errors import ID_RANGE, DomainError, storable_id
from app.i18n import entity_text, lazy_gettext
from app.models.base import choices_of, labels_of
from app.security.scope import field_allowed, field_limits, may_write, related_choices
from app.services.workflow import Workflow, may_make
from app.views.entity import (
    API_PERMISSIONS,
    VIEW_PERMISSIONS,
    EntityBase,
    check_page_args,
    clamp_page_size,
    directory_view_of,
    list_args,
    view_of,
)
from app.views.fields import (
    CHOICES_PAGE_SIZE,
    AjaxSelectField,
    AjaxSelectWidget,
    boolean_fields,
    checked_by,
    choice_fields,
    choices_response,
    computed_field,
    flag_field,
    related_fields,
    settle_single_choices,
    within_field,
)
from app.views.filters import WITHIN, EntityFilterConverter, FilterFlag, FilterWithin, flags_of
from app.views.formatters import PageFormatters, page_formatters
from app.views.interface import BoundedCount, ScopedInterface
from app.views.listing import EntityListWidget, EntitySearchWidget
from app.views.transfer import Transfers

# What this module defined before it was cut (issue 18), importable from here as before.
__all__ = [
    "API_PERMISSIONS", "CHOICES_PAGE_SIZE", "ID_RANGE", "VIEW_PERMISSIONS", "WITHIN",
    "AjaxSelectField", "AjaxSelectWidget", "BoundedCount", "EntityApi", "EntityFilterConverter",
    "EntityView", "ExistingRelated", "FilterFlag", "FilterWithin", "PageFormatters",
    "ScopedInterface", "check_page_args", "checked_by", "choices_of", "choices_response",
    "clamp_page_size", "directory_view_of", "flags_of", "labels_of", "list_args", "storable_id",
    "view_of",
]

class EntityView(EntityBase, Transfers, ModelView):
    """Base of every business ModelView. Subclasses set `model` and their columns, and
    `workflow` when the model's status moves through a transition table."""

    operations = VIEW_PERMISSIONS
    kind = "a view"
    workflow: Workflow | None = None
    show_template = "gongjian/show.html"
    list_template = "gongjian/list.html"
    list_widget = EntityListWidget
    search_widget = EntitySearchWidget

    @classmethod
    def declare(cls, model) -> None:
        super().declare(model)
        cls.route_base = f"/{model.__tablename__}"
        cls.declare_titles(model)
        cls.formatters_columns = page_formatters(model, cls.__dict__.get("formatters_columns"))
        fields = {**choice_fields(model, cls.label_columns),
                  **related_fields(model, cls.label_columns)}
        cls.declare_search(model, fields)
        fields |= boolean_fields(model, cls.label_columns, taken=fields)
        cls.add_form_extra_fields = {**fields, **(cls.__dict__.get("add_form_extra_fields") or {})}
        cls.edit_form_extra_fields = {**fields,
                                      **(cls.__dict__.get("edit_form_extra_fields") or {})}
        cls.declare_transfers()
        cls.declare_bulk_moves()

    @classmethod
    def declare_titles(cls, model) -> None:
        cls.list_title = cls.list_title or entity_text("%(entity)s列表", model.__label__)
        cls.show_title = cls.show_title or entity_text("查看%(entity)s", model.__label__)
        cls.add_title = cls.add_title or entity_text("新增%(entity)s", model.__label__)
        cls.edit_title = cls.edit_title or entity_text("编辑%(entity)s", model.__label__)

    @classmethod
    def declare_search(cls, model, fields) -> None:
        """The search form: a filter on a related record searches it, never lists it all; every
        list placed in the tree can be narrowed to a node's subtree (figures link here)."""
        searched = cls.__dict__.get("search_columns") or ()
        cls.search_form_extra_fields = {k: v for k, v in fields.items() if k in searched}
        if searched and model.__scope__.org and WITHIN not in searched:
            cls.search_columns = [*searched, WITHIN]
            cls.label_columns[WITHIN] = lazy_gettext("所属党组织")
            cls.search_form_extra_fields[WITHIN] = within_field(cls.label_columns[WITHIN])
        for flag in flags_of(model):
            if flag in searched:
                cls.search_form_extra_fields[flag] = flag_field(cls.label_columns.get(flag, flag))
        for name, choices in getattr(model, "__computed_choices__", {}).items():
            if name in searched:
                cls.search_form_extra_fields[name] = computed_field(
                    cls.label_columns.get(name, name), choices)

    @classmethod
    def declare_bulk_moves(cls) -> None:
        """A list action for each workflow move marked `bulk`."""
        workflow = cls.__dict__.get("workflow")
        for transition in workflow.transitions if workflow else ():
            if transition.bulk:
                name = f"bulk_{transition.name}"
                setattr(cls, name, bulk_action(
                    name, transition.label,
                    transition.confirm or f"确定对所选记录执行“{transition.label}”吗？",
                    "fa-check", single=False)(_bulk_transition(transition.name)))
                cls.method_permission_name[name] = "read"

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
        actions = _Offered({name: action for name, action in (actions or self.actions).items()
                            if self.may_use_action(name)})
        return super()._get_list_widget(filters, actions, order_column, order_direction, page,
                                        page_size, widgets, **kwargs)

    def may_use_action(self, name: str) -> bool:
        """A workflow's bulk move only for the roles its table names: FAB offers every action
        the view's read right reaches, and a liaison met 平台接单 only to be refused."""
        workflow = self.workflow
        if workflow is not None and name.startswith("bulk_") \
                and name.removeprefix("bulk_") in workflow.by_name:
            return may_make(workflow.by_name[name.removeprefix("bulk_")])
        return True

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

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):
        # A required choice with one possible value holds it (a field carried hidden from a
        # related record's page is that record's already).
        settle_single_choices(form, skipped=exclude_cols or ())
        return super()._get_add_widget(form, exclude_cols, widgets)

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

    # --- forms ---

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

    def receive_file(self, pk, store, done: str):
        """A file posted to a row's page (a meeting's attachment, a finding's photo): kept by
        `store(session, row, filename, stream)`, or refused with its reason; back to the page."""
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        upload = request.files.get("file")
        name, stream = (upload.filename, upload.stream) if upload else ("", None)
        try:
            store(self.datamodel.session, item, name, stream)
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(done, "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

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
                                             self.class_permission_name) \
                or not self.may_use_action(name):
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


class _Offered(dict):
    """The actions a list offers. Never falsy: FAB reads `actions or self.actions`, and a role
    offered none of them was offered them all."""

    def __bool__(self):
        return True


def _submitted() -> dict:
    """A form's fields: one value as a string, several (a multiple select) as a list; a file
    chosen in a file box as the uploaded file."""
    values = {key: values if len(values) > 1 else values[0]
              for key, values in request.form.lists() if key != "csrf_token"}
    values.update({key: upload for key, upload in request.files.items() if upload.filename})
    return values


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
