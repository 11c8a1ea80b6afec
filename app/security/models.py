"""The login user, linked to its place in the domain: an organisation node (for street and
community admins), a unit (for liaisons) and/or a member (for members)."""
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User as FabUser
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    false,
    text,
)
from sqlalchemy.orm import Session, relationship
from sqlalchemy.orm.attributes import get_history

# The links point at business tables that themselves point back at ab_user (created_by):
# use_alter adds them after both tables exist, on every database.
from app.errors import DomainError
from app.models.base import caption


class UserAccount(FabUser):
    __tablename__ = "ab_user"

    org_id = Column(Integer, ForeignKey("organization.id", use_alter=True), nullable=True,
                    info=caption("所属组织"))
    unit_id = Column(Integer, ForeignKey("unit.id", use_alter=True), nullable=True,
                     info=caption("所属单位"))
    member_id = Column(Integer, ForeignKey("member.id", use_alter=True), nullable=True,
                       info=caption("对应党员"))
    # Account security (app/security/login_guard.py): a password an administrator set must be
    # replaced at the next login (production); consecutive failures lock the account a while.
    must_change_password = Column(Boolean, nullable=False, default=False, server_default=false(),
                                  info=caption("须修改密码"))
    locked_until = Column(DateTime, nullable=True, info=caption("锁定至"))
    # Sessions and tokens carry the version they were issued under (app/security/sessions.py);
    # a password change, a reset, a deactivation or an administrator's lock bumps it, which
    # ends every one of them on every host.
    credential_version = Column(Integer, nullable=False, default=1, server_default=text("1"),
                                info=caption("凭据版本"))
    # The channels of notices besides the panel's message centre (app/services/notices.py),
    # chosen by the user in its user info.
    notify_email = Column(Boolean, nullable=False, default=False, server_default=false(),
                          info=caption("邮件通知"))
    notify_webhook = Column(Boolean, nullable=False, default=False, server_default=false(),
                            info=caption("短信/企业微信通知"))
    # The account's 手机号 (the account import's column, the user admin's field): personal
    # data, shown as every other phone is (models/org.py shown_phone).
    phone = Column(String(30), nullable=True, info=caption("手机号"))
    __revealing__ = ("phone_shown",)

    org = relationship("Organization", foreign_keys=[org_id])
    unit = relationship("Unit", foreign_keys=[unit_id])
    member = relationship("Member", foreign_keys=[member_id])

    def get_full_name(self) -> str:
        """A person's name as Chinese writes it: family name (FAB's last_name) first, no space
        ("系统管理员", "张三"); FAB joins first and last name with a space. A display rule
        over FAB's two columns, no schema change."""
        return f"{self.last_name or ''}{self.first_name or ''}".strip()

    @property
    def place(self) -> str:
        """Where the user stands, as the home page greets it ("张三（工农社区）"): its node
        (a street, a community, a grid), else its unit, else its member's home community —
        by the short name a place goes by where it has one. Empty for a role above them all."""
        node = self.org or (self.member.community if self.member is not None else None)
        if node is not None:
            return node.short_name or node.name
        return self.unit.name if self.unit is not None else ""

    def missing_link(self) -> str | None:
        """Why this account would see nothing (a role without the node, unit or member it is
        attached by), in Chinese; None when its links are there."""
        return link_problem([role.name for role in self.roles or ()], self._linked)

    def _linked(self, link: str):
        """The node, unit or member linked now — set as a row or as an id (the API and the
        seed set ids), live and readable; None otherwise."""
        from sqlalchemy.orm import object_session

        assigned = get_history(self, link).added
        if assigned:
            return assigned[0]
        key = getattr(self, f"{link}_id")
        session = object_session(self)
        if key is None or session is None:
            return getattr(self, link) if key is not None else None
        return session.get(self.__mapper__.relationships[link].mapper.class_, key)

    @property
    def phone_shown(self) -> str:
        """In full only to a role that sees personal data and owns the row — for an account
        (no data scope of its own) a role that sees all; masked for the others."""
        from app.models.org import shown_phone

        return shown_phone(self, self.phone)

    @property
    def phone_masked(self) -> str:
        """Lists mask it for everyone, as the member list does."""
        from app import validators

        return validators.mask_phone(self.phone)

    @property
    def link_note(self) -> str:
        """The user list's flag of an account that lacks its link."""
        return self.missing_link() or ""


def link_problem(role_names, linked) -> str | None:
    """The rule of roles.ROLE_LINKS for an account with these roles, whose `linked(link)` is
    the node, unit or member it is linked to (or None)."""
    from app.security.roles import GRID_NODE_TYPES, LINK_LABELS, ROLE_LABELS, ROLE_LINKS

    for name in role_names:
        link = ROLE_LINKS.get(name)
        if link is None:
            continue
        row = linked(link)
        if row is None:
            return f"{ROLE_LABELS[name]}须指定{LINK_LABELS[link]}，否则看不到任何数据"
        if name == "GridAdmin" and row.type not in GRID_NODE_TYPES:
            return f"{ROLE_LABELS[name]}的所属组织须是社区以下的网格党支部、楼栋党小组或党员中心户"
    return None


class UserSession(Model):
    """A logged-in browser session, named in its (signed) cookie by a random id whose hash is
    the key here: logout deletes the row, and a cookie whose row is gone — or whose version is
    not the user's — is no longer a session (app/security/sessions.py)."""

    __tablename__ = "user_session"

    id = Column(String(64), primary_key=True)  # sha256 of the cookie's session id
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False,
                     index=True)
    credential_version = Column(Integer, nullable=False)
    created_on = Column(DateTime, nullable=False)
    seen_on = Column(DateTime, nullable=False, index=True)


class RefreshToken(Model):
    """A refresh token that may still be used once: a refresh deletes its row and issues a
    new token with a new row (rotation); a token without a row is refused."""

    __tablename__ = "refresh_token"

    jti = Column(String(64), primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False,
                     index=True)
    expires_on = Column(DateTime, nullable=False, index=True)


class AccountLinkMissing(DomainError):
    """An account saved by someone without the link its role needs (`missing_link`)."""


@event.listens_for(Session, "before_flush")
def _accounts_see_something(session, flush_context, instances) -> None:
    """The one check of every way an account is saved by a person — the user admin, the
    account import, the API: a role that needs a link is not saved without it. Seeds and
    commands (no acting user) link theirs after creating them; an existing account lacking
    its link is only refused when its roles or links change (its own password change passes),
    and is reported by `flask gongjian check-accounts` and flagged in the user list."""
    from flask import has_app_context

    from app.security.principal import current_principal

    if not has_app_context() or current_principal().user_id is None:
        return
    for user in list(session.new) + list(session.dirty):
        if not isinstance(user, UserAccount):
            continue
        if user not in session.new and not any(
                get_history(user, key).has_changes()
                for key in ("roles", "org", "org_id", "unit", "unit_id", "member", "member_id")):
            continue
        with session.no_autoflush:
            reason = user.missing_link()
        if reason:
            raise AccountLinkMissing(reason)


class AccountBatch(Model):
    """Accounts opened together (the member list's 开通账号, the account import): which are
    still to open (batches of `accounts.BATCH`, with progress), and their 账号通知单. The
    initial passwords are kept encrypted only until the slips are first shown, then dropped:
    a reprint shows names and usernames, never a password again."""

    __tablename__ = "account_batch"

    id = Column(String(32), primary_key=True)  # a random token: the slips' address
    created_by_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False,
                           index=True)
    created_on = Column(DateTime, nullable=False)
    role = Column(String(64), nullable=False)
    total = Column(Integer, nullable=False, default=0)
    # JSON: the member ids still to open; the row problems met (name, reason).
    pending = Column(Text, nullable=False, default="[]")
    problems = Column(Text, nullable=False, default="[]")
    # Encrypted JSON of the slips (name, username, password, link) until first shown; then
    # the same without passwords.
    slips = Column(Text, nullable=False, default="")
    shown_on = Column(DateTime, nullable=True)
    printed = Column(Integer, nullable=False, default=0)


class AccessStamp(Model):
    """One row: a number raised in the same transaction as every change to what a role may do
    (its rights, a right itself, a role) — so each app process keeps the roles' rights between
    requests and every host sees a change at its next request (app/security/manager.py
    `rights_of_roles`). Read once per request: one row by its key, where the rights were a
    join of four tables."""

    __tablename__ = "access_stamp"

    id = Column(Integer, primary_key=True, autoincrement=False)
    version = Column(Integer, nullable=False, default=0, server_default=text("0"))


ACCESS_STAMP_ID = 1


def raise_access_stamp(connection) -> None:
    """Every process's kept rights are stale from this transaction's commit on (a session or
    its connection)."""
    connection.execute(AccessStamp.__table__.update()
                       .where(AccessStamp.__table__.c.id == ACCESS_STAMP_ID)
                       .values(version=AccessStamp.__table__.c.version + 1))


def _rights_models():
    from flask_appbuilder.security.sqla.models import Permission, PermissionView, Role, ViewMenu

    return (Role, PermissionView, Permission, ViewMenu)


@event.listens_for(Session, "before_flush")
def _note_rights_changed(session, flush_context, instances) -> None:
    # A role's rights are its collection (ab_permission_view_role): a change to it makes the
    # role dirty; a right removed or renamed is its own row. A user's roles are not among
    # them: the rights are kept by role, and a user's roles are read each request.
    models = _rights_models()
    if any(isinstance(row, models)
           for rows in (session.new, session.dirty, session.deleted) for row in rows):
        session.info["access_changed"] = True


@event.listens_for(Session, "after_flush")
def _raise_stamp_if_rights_changed(session, flush_context) -> None:
    if session.info.pop("access_changed", False):
        raise_access_stamp(session.connection())  # mid-flush: on the flush's connection
