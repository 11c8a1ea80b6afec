"""The audit trail, read-only (DOMAIN.md §6): a list and a record page for Admin and Auditor,
filterable by user, resource, record, action and time, and the REST resource `audit_log`.

Every business record's page links here, to its own history (`record_history_url`); a record
of the trail links back to the row it is about. Nobody writes the trail through these: the
view and the API expose reads only, and the model refuses any update or delete
(app/models/records.py).
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime

import prison
from flask import current_app, g
from flask_appbuilder.fieldwidgets import Select2Widget
from prison.decoder import ParserException
from sqlalchemy import select
from sqlalchemy.orm import MANYTOONE, joinedload
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from app.dashboards.links import EQ, WITHIN, list_url
from app.errors import storable_id
from app.extensions import db
from app.i18n import N_, gettext, lazy_gettext
from app.models.base import choices_of
from app.models.org import Organization
from app.models.records import AUDIT_ACTIONS, AuditLog
from app.security.models import UserAccount
from app.views.base import EntityApi, EntityView, labels_of
from app.views.formatters import shown

# Resources that are not business tables but appear in the trail.
OTHER_RESOURCES = {"ab_user": N_("用户"), "seed": N_("演示数据"), "dashboard": N_("数据看板"),
                   "backup": N_("数据库备份"), "account": N_("账号")}
# Keys of the records that are not a row's fields (logins, exports, imports, reveals, …).
DETAIL_LABELS = {
    "_operation": N_("流转操作"), "format": N_("格式"), "filters": N_("筛选条件"),
    "rows": N_("行数"), "refused": N_("拒绝原因"), "locked_until": N_("锁定至"),
    "ids": N_("记录编号"), "path": N_("页面"), "created": N_("新增"), "updated": N_("更新"),
    "file": N_("文件"), "scale": N_("规模"), "label": N_("记录"), "deleted_on": N_("删除时间"),
    "retention_days": N_("保留天数"), "figure": N_("图表"), "period": N_("期间"),
    "organizations": N_("党组织数"), "units": N_("单位数"), "members": N_("党员数"),
    "not_rated": N_("未达一星数"),
}
# Operations recorded by name that are not a workflow's moves.
OPERATIONS = {"compute": N_("计算星级")}
REFUSALS = {"locked": N_("账号已锁定"), "throttled": N_("尝试过于频繁"),
            "must_change_password": N_("须先修改初始密码")}


def _models() -> dict:
    from app.security.scope import scoped_models

    return {m.__tablename__: m for m in scoped_models()}


def _named() -> dict:
    """Every table the trail names, by its Chinese name: the business tables, the trail itself
    (an export of it), and the records that are not tables."""
    from flask_appbuilder import Model

    return {**{m.class_.__tablename__: m.class_.__label__ for m in Model.registry.mappers
               if getattr(m.class_, "__label__", "")}, **OTHER_RESOURCES}


def resource_label(resource: str | None) -> str:
    label = _named().get(resource or "")
    return gettext(label) if label else resource or ""


def _resource_choices():
    return [SelectChoice("", lazy_gettext("（全部）"))] + [
        SelectChoice(name, f"{gettext(label)}（{name}）") for name, label in sorted(_named().items())]


def record_history_url(resource: str, pk) -> str | None:
    """The trail of one row (`/audit_log/list/?…resource…record_id…`), or None when the user
    may not read the trail."""
    if pk is None or resource not in _models() and resource not in OTHER_RESOURCES:
        return None
    return list_url("audit_log", ("resource", EQ, resource), ("record_id", EQ, str(pk)))


def record_url(entry: AuditLog) -> str | None:
    """The page of the row a record is about, where the user may open it."""
    if not entry.record_id or entry.resource not in _models():
        return None
    if not current_app.appbuilder.sm.has_access("can_read", entry.resource):
        return None
    return f"/{entry.resource}/show/{entry.record_id}"


# An instant as the audit trail stores it (services/audit.py: UTC, `isoformat()`).
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def _plain(value) -> str:
    # The pages' one formatter (app/views/formatters.py); a nested record stays JSON.
    if isinstance(value, dict) or (isinstance(value, list) and any(
            isinstance(v, (dict, list)) for v in value)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        value = datetime.fromisoformat(value)  # read in the zone, to the minute, as on pages
    return str(shown(value))


@dataclass(frozen=True)
class Field:
    """A recorded field as its table's pages name and show it."""

    label: str | None
    choices: dict | None = None
    target: type | None = None  # the table a foreign key points at


@functools.cache
def _fields(model) -> dict[str, Field]:
    """The recorded keys of a table (its columns, foreign keys included): their labels, the
    labels of their coded values and the table a foreign key names (by its relationship)."""
    labels, choices = labels_of(model), choices_of(model)
    if model.__tablename__ == "ab_user":  # FAB's own columns are labelled by its user page
        labels = {**current_app.appbuilder.sm.userdbmodelview.label_columns, **labels}
    fields = {}
    for relation in model.__mapper__.relationships:
        if relation.direction is MANYTOONE:
            for column in relation.local_columns:
                fields[column.key] = Field(labels.get(relation.key) or labels.get(column.key),
                                           target=relation.mapper.class_)
    for attr in model.__mapper__.column_attrs:
        if attr.key not in fields:
            fields[attr.key] = Field(labels.get(attr.key), choices.get(attr.key))
    return fields


def _captions() -> dict:
    return g.setdefault("_gongjian_audit_captions", {})


def _name_rows(model, pks) -> None:
    """Related rows by their names, as their pages show them, remembered for the request: one
    query per table. A name may read a parent's (a rectification's finding): the parents come
    in the same query, not one by one as each name is made."""
    seen = _captions()
    wanted = {pk for pk in pks if (model, pk) not in seen}
    ids = {storable_id(pk) for pk in wanted} - {None}
    parents = [joinedload(getattr(model, r.key)) for r in model.__mapper__.relationships
               if r.direction is MANYTOONE]
    # Marked as a load in bulk (one per table, whatever the page size), as a selectinload is.
    query = select(model).where(model.id.in_(ids)).options(*parents) \
        .execution_options(gongjian_bulk_load=True)
    rows = {row.id: str(row) for row in db.session.execute(query).unique().scalars()} if ids else {}
    for pk in wanted:
        seen[(model, pk)] = rows.get(storable_id(pk), f"#{pk}")


def name_related(entries) -> None:
    """The rows a page of records names (its foreign keys' values), named together: a list
    page costs one query per table it names, not one per row."""
    wanted = {}
    for entry in entries:
        model = _models().get(entry.resource or "")
        fields = _fields(model) if model is not None else {}
        for key, value in entry.details.items():
            field = fields.get(key)
            if field is None or field.target is None:
                continue
            for one in value if isinstance(value, list) else [value]:
                if one not in (None, "") and not isinstance(one, (dict, list)):
                    wanted.setdefault(field.target, set()).add(one)
    for model, pks in wanted.items():
        _name_rows(model, pks)


def _caption(model, pk) -> str:
    """A related row by its name, as its pages show it (once per request)."""
    if (model, pk) not in _captions():
        _name_rows(model, [pk])
    return _captions()[(model, pk)]


def _value(field: Field | None, value) -> str:
    if value is None or value == "":
        return ""
    if field is not None and field.choices and value in field.choices:
        return gettext(field.choices[value])
    if field is not None and field.target is not None and not isinstance(value, (dict, list)):
        return _caption(field.target, value)
    return _plain(value)


def _view(resource):
    from app.views.entity import view_of

    return view_of(resource or "")


def _filter_value(view, column: str, arg_name: str, value) -> str:
    """A filter's value as the list's search form shows it: a related row or a node by its
    name, a flag as 是/否, a code by its label."""
    values = value if isinstance(value, list) else [value]
    datamodel = view.datamodel
    if arg_name == "flag":
        shown_ = [gettext("是") if str(v).strip().lower() in ("1", "y", "yes", "true", "on", "是")
                  else gettext("否") for v in values]
    elif arg_name == WITHIN:
        shown_ = [_caption(Organization, v) for v in values]
    elif datamodel.is_relation(column):
        shown_ = [_caption(datamodel.get_related_model(column), v) for v in values]
    else:
        field = _fields(datamodel.obj).get(column)
        shown_ = [_value(field, v) for v in values]
    return "、".join(shown_)


def _condition(view, column: str, arg_name: str | None, index: int | None, value) -> str:
    label = str(view.label_columns.get(column, column))
    offered = view.datamodel.get_filters(view.search_columns)._all_filters.get(column, [])
    if index is None:
        index = next((i for i, f in enumerate(offered) if f.arg_name == arg_name), None)
    if index is None or index >= len(offered):
        return f"{label} {arg_name or ''} {value}".replace("  ", " ")
    flt = offered[index]
    return f"{label} {flt.name} {_filter_value(view, column, flt.arg_name, value)}"


def _order(view, column: str, direction: str) -> str:
    label = view.label_columns.get(column, column)
    return gettext("按%(column)s%(direction)s", column=label,
                   direction=gettext("降序") if direction == "desc" else gettext("升序"))


def filter_words(resource: str | None, described) -> str:
    """An export's recorded filters as the list's search form shows them ("状态 不等于 已办结",
    by the filter's own name where the page's argument only says `_flt_7_status`), and its
    order; the API's `q` likewise. The recorded arguments are read by the list's filters now."""
    view = _view(resource)
    if not isinstance(described, dict) or view is None or getattr(view, "_filters", None) is None:
        return _plain(described)
    words = []
    if described.get("api"):
        try:
            args = prison.loads(described.get("q") or "()")
        except ParserException:  # recorded as given: show it as given
            return str(described.get("q"))
        for flt in args.get("filters", []) if isinstance(args, dict) else []:
            if isinstance(flt, dict) and "col" in flt:
                words.append(_condition(view, flt["col"], flt.get("opr"), None, flt.get("value")))
        if isinstance(args, dict) and args.get("order_column"):
            words.append(_order(view, args["order_column"], args.get("order_direction", "asc")))
    else:
        order = [None, "asc"]
        for key, value in described.items():
            found = re.fullmatch(r"_flt_(\d)_(.+)", key)
            if found:
                words.append(_condition(view, found.group(2), None, int(found.group(1)), value))
            elif key.startswith("_oc_"):
                order[0] = value
            elif key.startswith("_od_"):
                order[1] = value
        if order[0]:
            words.append(_order(view, *order))
    return "，".join(words) or gettext("无（全部记录）")


def _operation(resource, name) -> str:
    from app.services.workflow import REGISTRY

    workflow = REGISTRY.get(resource or "")
    transition = workflow.by_name.get(name) if workflow else None
    if transition is not None:
        return gettext(transition.label)
    return gettext(OPERATIONS[name]) if name in OPERATIONS else str(name)


def detail_rows(entry: AuditLog, labelled_only: bool = False
                ) -> list[tuple[str, str, str | None]]:
    """(label, before or value, after) for each key of a record's changes, in the words of the
    table's pages; after is None for a value that is not a change. `labelled_only`: without
    the bookkeeping columns no page shows (materialised paths, uniqueness keys)."""
    model = _models().get(entry.resource or "") or (
        UserAccount if entry.resource == "ab_user" else None)
    fields = _fields(model) if model is not None else {}
    rows = []
    for key, value in entry.details.items():
        field = fields.get(key)
        label = (field.label if field is not None else None) or DETAIL_LABELS.get(key)
        if label is None and labelled_only:
            continue
        label = str(label or key)
        if key == "refused":
            rows.append((label, gettext(REFUSALS.get(value, value)), None))
        elif key == "_operation":
            rows.append((label, _operation(entry.resource, value), None))
        elif key == "filters" and entry.action == "export":
            rows.append((label, filter_words(entry.resource, value), None))
        elif field is not None and isinstance(value, list) and len(value) == 2:
            rows.append((label, _value(field, value[0]), _value(field, value[1])))
        elif isinstance(value, list) and len(value) == 2 and key not in ("ids",):
            rows.append((label, _plain(value[0]), _plain(value[1])))
        else:
            rows.append((label, _value(field, value), None))
    return rows


def change_text(entry: AuditLog, limit: int | None = None) -> str:
    """A record's changes in one line, "字段：旧值 → 新值；…" (a new row's fields as
    "字段：值"), cut to `limit` characters for a list."""
    parts = []
    for label, before, after in detail_rows(entry, labelled_only=True):
        if after is None:
            parts.append(f"{label}：{before}")
        elif entry.action == "create" and before == "":
            if after != "":  # a new row's empty fields say nothing
                parts.append(f"{label}：{after}")
        else:
            parts.append(f"{label}：{before or gettext('（空）')} → {after or gettext('（空）')}")
    text = "；".join(parts)
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def activity_text(entry: AuditLog, who: str) -> str:
    """One line of recent activity, in words: "社区管理员 新增 数据字典 #41", an export with its
    rows and filters as its list shows them."""
    what = resource_label(entry.resource)
    details = entry.details
    if entry.action in ("export", "import") and details.get("rows") is not None:
        what += gettext("（%(rows)s 条）", rows=details["rows"])
    if entry.action == "export" and "filters" in details:
        what += f"：{filter_words(entry.resource, details['filters'])}"
    record = f" #{entry.record_id}" if entry.record_id else ""
    return f"{who} {_action_label(entry.action)} {what}{record}"


def who_did(entries) -> dict:
    """The users of records by the names the panel shows them by (family name first), else
    their user names; the system's own writes as 系统."""
    ids = {entry.user_id for entry in entries if entry.user_id is not None}
    names = {user.id: user.get_full_name() or user.username for user in db.session.execute(
        select(UserAccount).where(UserAccount.id.in_(ids))).scalars()} if ids else {}
    return {entry.id: names.get(entry.user_id) or (
        gettext("系统") if entry.username in (None, "system") else entry.username)
        for entry in entries}


def _action_label(value) -> str:
    return gettext(AUDIT_ACTIONS[value]) if value in AUDIT_ACTIONS else (value or "")


class AuditLogView(EntityView):
    """操作日志: read and export, nothing else."""

    model = AuditLog
    include_route_methods = {"list", "show", "export"}
    base_permissions = ["can_read", "can_export"]
    muldelete = None  # the trail is append-only: no delete action either
    show_template = "records/audit_show.html"
    list_columns = ["time", "username", "action", "resource", "record_id", "summary", "ip"]
    show_columns = ["time", "username", "user_id", "action", "resource", "record_id", "ip"]
    # In the list's words: the object type by its name, the changes by the fields' labels.
    export_columns = ["time", "username", "user_id", "action", "resource", "record_id",
                      "content", "ip"]
    search_columns = ["time", "username", "user_id", "action", "resource", "record_id", "ip"]
    order_columns = ["time", "username", "action", "resource", "record_id"]
    base_order = ("id", "desc")
    page_size = 50
    label_columns = {"user_id": lazy_gettext("用户编号")}
    formatters_columns = {"resource": resource_label, "content": change_text,
                          "summary": lambda entry: change_text(entry, limit=80)}

    def _get_list_widget(self, *args, **kwargs):
        widgets = super()._get_list_widget(*args, **kwargs)
        # FAB hands the template a generator of the page's rows: read once here, kept for it.
        args = widgets["list"].template_args
        args["value_columns"] = rows = list(args["value_columns"])
        name_related(row["summary"] for row in rows)
        return widgets

    def _show(self, pk):
        widgets = super()._show(pk)
        entry = self.datamodel.get(pk)
        widgets["details"] = detail_rows(entry)
        widgets["record_url"] = record_url(entry)
        widgets["history_url"] = entry.record_id and record_history_url(entry.resource,
                                                                        entry.record_id)
        widgets["action_label"] = _action_label(entry.action)
        return widgets


# The base view builds the search form from the model's coded columns; the resource box offers
# the known resources rather than free text.
AuditLogView.search_form_extra_fields = {
    **AuditLogView.search_form_extra_fields,
    "resource": SelectField(lazy_gettext("对象类型"), choices=_resource_choices,
                            widget=Select2Widget()),
}


class AuditLogApi(EntityApi):
    """`/api/v1/audit_log/`: the same records, for the same readers; no writes."""

    model = AuditLog
    include_route_methods = {"get", "get_list", "info", "export"}
    base_permissions = ["can_read", "can_export"]
    list_columns = show_columns = ["id", "time", "user_id", "username", "action", "resource",
                                   "record_id", "changes", "ip"]
    order_columns = ["id", "time", "username", "action", "resource", "record_id"]
    base_order = ("id", "desc")
