"""The audit trail, read-only (DOMAIN.md §6): a list and a record page for Admin and Auditor,
filterable by user, resource, record, action and time, and the REST resource `audit_log`.

Every business record's page links here, to its own history (`record_history_url`); a record
of the trail links back to the row it is about. Nobody writes the trail through these: the
view and the API expose reads only, and the model refuses any update or delete
(app/models/records.py).
"""
from __future__ import annotations

import json
import re
from datetime import datetime

from flask import current_app
from flask_appbuilder.fieldwidgets import Select2Widget
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from app.dashboards.links import EQ, list_url
from app.i18n import N_, gettext, lazy_gettext
from app.models.records import AUDIT_ACTIONS, AuditLog
from app.views.base import EntityApi, EntityView, labels_of
from app.views.formatters import shown

# Resources that are not business tables but appear in the trail.
OTHER_RESOURCES = {"ab_user": N_("用户"), "seed": N_("演示数据"), "dashboard": N_("数据看板"),
                   "backup": N_("数据库备份")}
# Keys of the records that are not a row's fields (logins, exports, imports, reveals, …).
DETAIL_LABELS = {
    "_operation": N_("流转操作"), "format": N_("格式"), "filters": N_("筛选条件"),
    "rows": N_("行数"), "refused": N_("拒绝原因"), "locked_until": N_("锁定至"),
    "ids": N_("记录编号"), "path": N_("页面"), "created": N_("新增"), "updated": N_("更新"),
    "file": N_("文件"), "scale": N_("规模"), "label": N_("记录"), "deleted_on": N_("删除时间"),
    "retention_days": N_("保留天数"), "figure": N_("图表"), "period": N_("期间"),
}
REFUSALS = {"locked": N_("账号已锁定"), "throttled": N_("尝试过于频繁"),
            "must_change_password": N_("须先修改初始密码")}


def _models() -> dict:
    from app.security.scope import scoped_models

    return {m.__tablename__: m for m in scoped_models()}


def resource_label(resource: str | None) -> str:
    model = _models().get(resource or "")
    if model is not None and model.__label__:
        return gettext(model.__label__)
    if resource in OTHER_RESOURCES:
        return gettext(OTHER_RESOURCES[resource])
    return resource or ""


def _resource_choices():
    names = {**{name: model.__label__ for name, model in _models().items()}, **OTHER_RESOURCES}
    return [SelectChoice("", lazy_gettext("（全部）"))] + [
        SelectChoice(name, f"{gettext(label)}（{name}）") for name, label in sorted(names.items())]


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


def detail_rows(entry: AuditLog) -> list[tuple[str, str, str | None]]:
    """(label, before or value, after) for each key of a record's changes; after is None for a
    value that is not a change."""
    model = _models().get(entry.resource or "")
    labels = labels_of(model) if model is not None else {}
    rows = []
    for key, value in entry.details.items():
        label = labels.get(key) or DETAIL_LABELS.get(key) or key
        if key == "refused":
            value = gettext(REFUSALS.get(value, value))
        if isinstance(value, list) and len(value) == 2 and key not in ("ids",):
            rows.append((str(label), _plain(value[0]), _plain(value[1])))
        else:
            rows.append((str(label), _plain(value), None))
    return rows


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
    export_columns = ["time", "username", "user_id", "action", "resource", "record_id",
                      "changes", "ip"]
    search_columns = ["time", "username", "user_id", "action", "resource", "record_id", "ip"]
    order_columns = ["time", "username", "action", "resource", "record_id"]
    base_order = ("id", "desc")
    page_size = 50
    label_columns = {"user_id": lazy_gettext("用户编号")}
    formatters_columns = {"resource": resource_label}

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
