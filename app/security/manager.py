"""The single place for access rules that FAB consults: our user model (linked to the
organisation tree, a unit and a member), the user admin view, and login auditing."""
from __future__ import annotations

import re
from functools import cached_property

from flask import abort, current_app, g, has_request_context
from flask_appbuilder import expose
from flask_appbuilder.fields import QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import Select2ManyWidget, Select2Widget
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.security.forms import UserInfoEdit
from flask_appbuilder.security.sqla.apis.user.api import UserApi as FabUserApi
from flask_appbuilder.security.sqla.manager import SecurityManager as FabSecurityManager
from flask_appbuilder.security.sqla.models import assoc_permissionview_role
from flask_appbuilder.security.views import (
    PermissionModelView,
    PermissionViewModelView,
    RoleModelView,
    UserDBModelView,
    UserGroupModelView,
    UserInfoEditView,
    ViewMenuModelView,
)
from flask_appbuilder.widgets import ListWidget, ShowWidget
from flask_login import user_logged_out
from marshmallow import ValidationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload
from wtforms import BooleanField

from app.errors import DomainError
from app.i18n import N_, lazy_gettext
from app.security import api_csrf, busy, login_guard, personal_data, sessions
from app.security.display import (
    operation_label,
    permission_text,
    permissions_text,
    resource_label,
    role_label,
    roles_text,
)
from app.security.models import (
    ACCESS_STAMP_ID,
    AccessStamp,
    AccountLinkMissing,
    UserAccount,
    link_problem,
)
from app.security.scope import related_choices
from app.services import audit
from app.views.base import AjaxSelectField, choices_response
from app.views.formatters import PageFormatters

PHONE = re.compile(r"\+?[0-9][0-9-]{4,28}")
# In the app's extensions (one database's): the rights kept by the process, (role ids, access
# stamp) -> (resource, permission) pairs, and the public role's id by stamp. A request reads the
# stamp once; a new stamp makes new keys.
RIGHTS_KEY, PUBLIC_ROLE_KEY = "gongjian.rights", "gongjian.public_role"
RIGHTS_KEPT = 256
_LINK_LABELS = {"org": N_("所属组织"), "unit": N_("所属单位"), "member": N_("对应党员")}


def _roles():
    from app.extensions import db

    return db.session.query(current_app.appbuilder.sm.role_model).order_by("id")


def _roles_field():
    """The user form's roles, each by its Chinese label (FAB's lists the stored names)."""
    return QuerySelectMultipleField(lazy_gettext("Role"), query_func=_roles, get_pk_func=lambda role: role.id,
                                    get_label=lambda role: role_label(role.name),
                                    widget=Select2ManyWidget())


def _permissions():
    from app.extensions import db

    return db.session.query(current_app.appbuilder.sm.permissionview_model)


class RoleView(RoleModelView):
    """FAB's role pages, reading as the panel does: roles by their Chinese labels, rights as
    操作：资源 (the stored names are unchanged)."""
    class_permission_name = "RoleModelView"  # FAB's rights, unchanged

    # FAB's role widgets print the raw values (for its config-defined built-in roles, which the
    # panel has none of): the standard ones apply the formatters.
    list_widget = ListWidget
    show_widget = ShowWidget
    formatters_columns = PageFormatters({"name": role_label, "permissions": permissions_text})
    search_form_extra_fields = {"permissions": QuerySelectField(
        lazy_gettext("Permissions"), query_func=_permissions, get_label=permission_text,
        get_pk_func=lambda pv: pv.id, widget=Select2Widget(), allow_blank=True)}
    add_form_extra_fields = edit_form_extra_fields = {
        "permissions": QuerySelectMultipleField(
            lazy_gettext("Permissions"), query_func=_permissions, get_label=permission_text,
            get_pk_func=lambda pv: pv.id,
            widget=Select2ManyWidget())}


class GroupView(UserGroupModelView):
    class_permission_name = "UserGroupModelView"  # FAB's rights, unchanged
    formatters_columns = PageFormatters({"roles": roles_text})


class PermissionView(PermissionModelView):
    class_permission_name = "PermissionModelView"  # FAB's rights, unchanged
    formatters_columns = PageFormatters({"name": operation_label})


class ViewMenuView(ViewMenuModelView):
    class_permission_name = "ViewMenuModelView"  # FAB's rights, unchanged
    formatters_columns = PageFormatters({"name": resource_label})


class PermissionOnViewView(PermissionViewModelView):
    class_permission_name = "PermissionViewModelView"  # FAB's rights, unchanged
    formatters_columns = PageFormatters({"permission": operation_label,
                                         "view_menu": resource_label})


class UserView(UserDBModelView):
    """Users with their links (which decide their data scope). Only Admin manages users."""

    _links = {
        name: AjaxSelectField(label, owner=UserAccount, relation=name,
                              url=f"/users/choices/{name}")
        for name, label in _LINK_LABELS.items()
    }
    add_form_extra_fields = {**UserDBModelView.add_form_extra_fields, **_links,
                             "roles": _roles_field()}
    edit_form_extra_fields = {**_links, "roles": _roles_field()}
    # Values as the business pages show them (是/否, names, roles by their Chinese labels).
    formatters_columns = PageFormatters({"roles": roles_text})
    search_form_extra_fields = {"roles": QuerySelectField(
        lazy_gettext("Role"), query_func=_roles, get_label=lambda role: role_label(role.name),
        get_pk_func=lambda role: role.id, widget=Select2Widget(), allow_blank=True)}
    add_columns = UserDBModelView.add_columns + ["phone", "org", "unit", "member"]
    edit_columns = ["first_name", "last_name", "username", "active", "email", "phone", "roles",
                    "org", "unit", "member"]
    # The phone as every other (personal data): masked in the list, in full on the record's
    # page only to a role that sees personal data (and the showing audited).
    show_columns = ["first_name", "last_name", "username", "active", "email", "phone_shown",
                    "roles", "org", "unit", "member", "login_count", "last_login"]
    # FAB's user page shows its fieldsets, not show_columns: the links and the phone join them.
    show_fieldsets = [
        (lazy_gettext("User info"), {"fields": ["username", "active", "roles", "org", "unit",
                                                "member", "login_count"]}),
        (lazy_gettext("Personal Info"), {"fields": ["first_name", "last_name", "email",
                                                    "phone_shown"], "expanded": True}),
        *UserDBModelView.show_fieldsets[2:],
    ]
    # An account lacking the link its role needs (it sees nothing) is flagged in the list.
    list_columns = ["username", "first_name", "last_name", "phone_masked", "roles", "org", "unit",
                    "active", "link_note"]
    label_columns = {**UserDBModelView.label_columns,
                     **{key: lazy_gettext(text) for key, text in _LINK_LABELS.items()},
                     **{key: lazy_gettext("手机号") for key in ("phone", "phone_shown",
                                                               "phone_masked")},
                     "link_note": lazy_gettext("账号提示")}
    method_permission_name = {**(UserDBModelView.method_permission_name or {}), "choices": "list"}

    # Refused before saving, with the reason shown (the flush would refuse it too).
    def pre_add(self, item):
        _check_link(item)
        _check_phone(item)
        super().pre_add(item)

    def pre_update(self, item):
        _check_link(item)
        _check_phone(item)
        super().pre_update(item)

    @expose("/choices/<field>")
    @has_access
    def choices(self, field):
        if field not in self._links:
            abort(404)
        return choices_response(related_choices(UserAccount, field))


def _check_phone(user) -> None:
    """A phone as the account import reads one (full-width digits, spaces), or a refusal."""
    from app import import_values

    text = "".join(import_values.plain(user.phone or "").split())
    if text and not PHONE.fullmatch(text):
        raise DomainError("手机号只能包含数字和“-”，如 13800000000 或 010-12345678")
    user.phone = text or None


def _check_link(user) -> None:
    from app.extensions import db

    with db.session.no_autoflush:
        reason = user.missing_link()
    if reason:
        raise AccountLinkMissing(reason)


class UserApi(FabUserApi):
    """FAB's user API, refusing an account whose role needs a link it lacks (a 400 naming
    what is missing, as its other refusals). FAB's API writes its own User model, which has
    no links: such an account is made in the user admin (or the account import)."""

    def pre_add(self, item):
        self._refuse_unlinked(item, {})
        super().pre_add(item)

    def pre_update(self, item, data):
        from app.extensions import db

        table = UserAccount.__table__
        ids = db.session.execute(select(table.c.org_id, table.c.unit_id, table.c.member_id)
                                 .where(table.c.id == item.id)).mappings().one()
        self._refuse_unlinked(item, {link: ids[f"{link}_id"] for link in ("org", "unit",
                                                                            "member")})
        super().pre_update(item, data)

    @staticmethod
    def _refuse_unlinked(item, ids: dict) -> None:
        from app.extensions import db

        models = {name: rel.mapper.class_ for name, rel in
                  UserAccount.__mapper__.relationships.items() if name in ("org", "unit", "member")}

        def linked(link):
            return db.session.get(models[link], ids[link]) if ids.get(link) else None

        with db.session.no_autoflush:
            reason = link_problem([role.name for role in item.roles or ()], linked)
        if reason:
            raise ValidationError({"roles": [reason + "（请在用户管理页面指定）"]})


class NoticeChannelsForm(UserInfoEdit):
    """The user's own information, with the channels its notices take besides the panel's
    message centre (app/services/notices.py)."""

    notify_email = BooleanField(lazy_gettext("邮件通知"), description=lazy_gettext(
        "通过电子邮件接收提醒（发送到账号的电子邮箱；需系统已配置邮件服务器）"))
    notify_webhook = BooleanField(lazy_gettext("短信/企业微信通知"), description=lazy_gettext(
        "通过系统接入的短信网关或企业微信机器人接收提醒（需系统已配置）"))


class NoticeChannelsView(UserInfoEditView):
    form = NoticeChannelsForm
    # FAB's own address and permission (granted to every role as self-service: cli.SELF_SERVICE).
    route_base = "/userinfoeditview"
    class_permission_name = "UserInfoEditView"


class SecurityManager(FabSecurityManager):
    user_model = UserAccount
    userdbmodelview = UserView
    rolemodelview = RoleView
    groupmodelview = GroupView
    permissionmodelview = PermissionView
    viewmenumodelview = ViewMenuView
    permissionviewmodelview = PermissionOnViewView
    userinfoeditview = NoticeChannelsView
    user_api = UserApi
    # Login form and API login telling why a login was refused (app/security/login_guard.py).
    authdbview = login_guard.AuthDBView
    security_api = login_guard.SecurityApi
    # FAB's statistics chart loads Google Charts from the internet: not on a closed intranet.
    userstatschartview = None

    def exist_permission_on_roles(self, view_name, permission_name, role_ids) -> bool:
        # A page asks for dozens of rights (each menu entry, each button): answer them from the
        # roles' rights read once per request rather than with one query each.
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        return (view_name, permission_name) in self.rights_of_roles(role_ids)

    def _has_view_access(self, user, permission_name, view_name) -> bool:
        # A list page asks a dozen rights (its buttons, the menu's, the export's), each through
        # the user's roles and groups again: one answer per user and right for the request, as
        # the roles' rights themselves are read once per request (issue 30).
        if not has_request_context():
            return super()._has_view_access(user, permission_name, view_name)
        answers = g.setdefault("_gongjian_access", {})
        key = (type(user), getattr(user, "id", None), permission_name, view_name)
        if key not in answers:
            answers[key] = super()._has_view_access(user, permission_name, view_name)
        return answers[key]

    def rights_of_roles(self, role_ids) -> frozenset[tuple[str, str]]:
        """The (resource, permission) pairs the roles hold: kept by the process under the
        access stamp (models.AccessStamp), read once per request — a change to any role's
        rights, on any host, is seen at the next request."""
        stamp = self.access_stamp()
        # Without the stamp's row (a database short of migration 0041), only for the request.
        kept = current_app.extensions.setdefault(RIGHTS_KEY, {}) if stamp is not None \
            else g.setdefault("_gongjian_rights", {}) if has_request_context() else {}
        key = (tuple(sorted(role_ids)), stamp)
        rights = kept.get(key)
        if rights is None:
            # One statement for every request: building it (and its cache key) anew was a
            # third of this query's cost.
            rights = frozenset(tuple(row) for row in self.session.execute(
                self._rights_query, {"role_ids": key[0]}))
            if len(kept) >= RIGHTS_KEPT:  # a bound on distinct role sets, not a leak
                kept.clear()
            kept[key] = rights
        return rights

    def access_stamp(self) -> int | None:
        """The access stamp, read once per request (outside one: each time); with the user,
        when a user is loaded (`load_user`)."""
        if has_request_context() and "_gongjian_access_stamp" in g:
            return g._gongjian_access_stamp
        stamp = self.session.execute(self._stamp_query).scalar()
        if has_request_context():
            g._gongjian_access_stamp = stamp
        return stamp

    @cached_property
    def _stamp_query(self):
        return select(AccessStamp.version).where(AccessStamp.id == ACCESS_STAMP_ID)

    @cached_property
    def _rights_query(self):
        pv, role_link = self.permissionview_model, assoc_permissionview_role
        return (select(self.viewmenu_model.name, self.permission_model.name)
                .select_from(pv)
                .join(role_link, role_link.c.permission_view_id == pv.id)
                .join(self.permission_model, self.permission_model.id == pv.permission_id)
                .join(self.viewmenu_model, self.viewmenu_model.id == pv.view_menu_id)
                .where(role_link.c.role_id.in_(bindparam("role_ids", expanding=True))))

    def is_item_public(self, permission_name, view_name) -> bool:
        # FAB reads the public role and then its rights, row by row, each time it asks (twice
        # per API request: once before the token is read, once in has_access): the public
        # role's rights are read once per request, as the other roles' are.
        if not has_request_context():
            return super().is_item_public(permission_name, view_name)
        if "_gongjian_public_rights" not in g:
            stamp = self.access_stamp()
            kept = current_app.extensions.setdefault(PUBLIC_ROLE_KEY, {})
            role = kept.get(stamp, ()) if stamp is not None else ()
            if role == ():
                role = self.session.execute(select(self.role_model.id).where(
                    self.role_model.name == self.auth_role_public)).scalar()
                kept.clear()
                kept[stamp] = role
            g._gongjian_public_rights = self.rights_of_roles([role]) if role else frozenset()
        return (view_name, permission_name) in g._gongjian_public_rights

    def register_views(self):
        super().register_views()
        # After FAB's own request set-up (g.user), which the guard's checks rely on.
        sessions.install(current_app)  # first: an ended session goes no further
        login_guard.install(current_app)
        api_csrf.install(current_app)
        personal_data.install(current_app)

    def load_user(self, pk):
        # Flask-Login's loader, once per request: the roles and groups that every right FAB
        # checks reads come with the user in one statement, not in two lazy loads after it —
        # and so does the access stamp the request reads its rights under (`access_stamp`).
        # The cookie's session row too, for its check (app/security/sessions.py).
        row = self.session.execute(self._user_query, {"pk": int(pk),
                                                      "sid": sessions.session_digest()}
                                   ).unique().first()
        if row is None:
            return None
        user, stamp = row[0], row[1]
        if has_request_context() and "_gongjian_access_stamp" not in g:
            g._gongjian_access_stamp = stamp
        sessions.keep_session_row(user, row)
        return user if user.is_active else None

    @cached_property
    def _user_query(self):
        User, Group = self.user_model, self.group_model
        query = (select(User, self._stamp_query.scalar_subquery()).where(User.id == bindparam("pk"))
                 .options(joinedload(User.roles), joinedload(User.groups).joinedload(Group.roles)))
        return sessions.with_session_row(query, User)

    def auth_user_db(self, username, password):
        guard = login_guard.Attempt(self, username)  # lockout and rate limit, form and API
        try:
            user = guard.run(super().auth_user_db, password)
            user_id = user.id if user else None
            # Every attempt is on record, however busy the database (app/security/busy.py).
            busy.write_retrying(self.session, lambda session: audit.record(
                session, "login" if user else "login_failed", "ab_user",
                record_id=guard.account_id, user_id=user_id, username=username,
                changes=guard.note or None))
        except SQLAlchemyError:
            # A read-only, full or failed database: no login goes unrecorded, and none is a 500.
            self.session.rollback()
            current_app.logger.exception("login attempt of %r not recorded: refused", username)
            return guard.refuse_busy()
        return user

    def update_user_auth_stat(self, user, success=True):
        """FAB counts in Python (`fail_login_count += 1`) and swallows a failed write: the
        guard has counted this attempt atomically already (login_guard.count_attempt), so a
        failure adds nothing here and a success resets the count in one UPDATE."""
        if success:
            User = self.user_model
            user_id = user.id
            busy.write_retrying(self.session, lambda session: session.execute(
                update(User).where(User.id == user_id).values(
                    login_count=func.coalesce(User.login_count, 0) + 1,
                    last_login=login_guard.now(), fail_login_count=0)
                .execution_options(synchronize_session=False)))
            self.on_user_login(user)
        else:
            self.on_user_login_failed(user)


@user_logged_out.connect
def _record_logout(sender, user, **kwargs):
    from app.extensions import db

    if getattr(user, "id", None):
        audit.record(db.session, "logout", "ab_user", record_id=user.id, user_id=user.id,
                     username=user.username)
        db.session.commit()
