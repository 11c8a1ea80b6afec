"""Sessions and tokens that end (issue 16, finding 2).

- **Credential version.** Each user has one (`ab_user.credential_version`). Every browser
  session and every token is issued under it and is refused once it has moved on. It moves on
  when the password is changed (by the user or an administrator's reset), when an
  administrator deactivates or locks the account — ending all of that user's sessions and
  tokens on every host, since the check reads the database on each request. The failed-login
  lockout writes `locked_until` with a plain UPDATE (login_guard.lock_account), not through
  the ORM, and so ends nothing: five wrong passwords must not log somebody else out.
- **Server-side sessions.** The signed cookie names a random session id; the row keyed by its
  hash (`user_session`) is the session. Logout deletes that row only, so a copied cookie dies
  with the logout and the user's other sessions live on. Changing one's own password gives
  the session doing it a new id under the new version (a copy of the old cookie is dead).
- **Refresh tokens** live `JWT_REFRESH_TOKEN_EXPIRES` (7 days) and are used once: each refresh
  deletes its token's row (`refresh_token`) and returns a new token with a new row.

An ended session is logged out and sent to the login page with a Chinese message; an API
client gets 401 with a message.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from types import SimpleNamespace

from flask import (
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_jwt_extended import decode_token
from flask_login import current_user, logout_user, user_logged_in, user_logged_out
from sqlalchemy import bindparam, delete, event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from app import clock
from app.i18n import gettext
from app.security import busy

SESSION_KEY = "_gj_sid"
_ROTATE = "_gj_rotate_session"
_SEEN_EVERY = timedelta(minutes=1)  # how often a session's last activity is written


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _db():
    from app.extensions import db

    return db.session


def ended_message() -> str:
    return gettext("您的登录已失效（密码已修改、账号已停用或锁定，或已在别处退出），请重新登录")


# --- credential versions ----------------------------------------------------------------------

@event.listens_for(Session, "before_flush")
def _bump_credential_version(db_session, flush_context, instances) -> None:
    from app.security.models import UserAccount
    from app.security.scope import current_principal

    for user in list(db_session.dirty):
        if not isinstance(user, UserAccount):
            continue
        deactivated = get_history(user, "active")
        locked = get_history(user, "locked_until")
        if get_history(user, "password").has_changes() or \
                (deactivated.has_changes() and not user.active) or \
                (locked.has_changes() and user.locked_until is not None):
            user.credential_version = (user.credential_version or 1) + 1
            if has_request_context() and current_principal().user_id == user.id:
                g.setdefault(_ROTATE, True)


# --- browser sessions -------------------------------------------------------------------------

def start_session(user) -> None:
    """Give this browser session a new id under the user's current version."""
    from app.security.models import UserAccount, UserSession

    old = session.pop(SESSION_KEY, None)
    user_id = user.id
    sid = secrets.token_urlsafe(32)
    # Sessions idle past the limit are over (their cookies are refused): forget their rows.
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"]) * 2 + _SEEN_EVERY

    def write(db_session):
        moment = clock.utcnow()
        if old:
            db_session.execute(delete(UserSession).where(UserSession.id == _digest(old)))
        db_session.execute(delete(UserSession).where(UserSession.seen_on < moment - idle))
        version = db_session.execute(select(UserAccount.credential_version)
                                     .where(UserAccount.id == user_id)).scalar()
        db_session.add(UserSession(id=_digest(sid), user_id=user_id, credential_version=version,
                                   created_on=moment, seen_on=moment))

    busy.write_retrying(_db(), write)
    session[SESSION_KEY] = sid


@user_logged_in.connect
def _on_login(sender, user, **kwargs):
    start_session(user)


@user_logged_out.connect
def _on_logout(sender, user, **kwargs):
    from app.security.models import UserSession

    sid = session.pop(SESSION_KEY, None)
    if sid:
        busy.write_retrying(_db(), lambda db_session: db_session.execute(
            delete(UserSession).where(UserSession.id == _digest(sid))))


def _is_static() -> bool:
    return request.endpoint in ("static", "appbuilder.static") or \
        request.path.startswith("/static/")


# The cookie's session row as the user's own load read it, by user id (`with_session_row`).
_LOADED = "_gongjian_session_rows"


def with_session_row(statement, user_model):
    """The user's own load (app/security/manager.py `load_user`, once per request) with this
    cookie's session row outer-joined: the check below then sends no statement of its own.
    Bind `sid` to `session_digest()`."""
    from app.security.models import UserSession

    return statement.add_columns(
        UserSession.user_id.label("session_user_id"),
        UserSession.credential_version.label("session_version"),
        UserSession.seen_on.label("session_seen_on"),
    ).outerjoin(UserSession, (UserSession.id == bindparam("sid"))
                & (UserSession.user_id == user_model.id))


def session_digest() -> str | None:
    sid = session.get(SESSION_KEY) if has_request_context() else None
    return _digest(sid) if sid else None


def keep_session_row(user, row) -> None:
    """What the user's load read of this cookie's session, for `_check_session`: the row the
    check's own statement would read (None: no live row of this user under this cookie)."""
    if not has_request_context():
        return
    found = None if row.session_user_id is None else SimpleNamespace(
        user_id=row.session_user_id, credential_version=row.session_version,
        seen_on=row.session_seen_on, current=user.credential_version, active=user.active)
    g.setdefault(_LOADED, {})[str(user.id)] = found


def _check_session():
    """A cookie is a session only while its row exists under the user's current version."""
    from app.security.models import UserAccount, UserSession

    if _is_static() or "_user_id" not in session:
        return None
    sid = session.get(SESSION_KEY)
    row = None
    if sid:
        # The user's load reads the session's row with it (`with_session_row`); a user who
        # does not load (no such user) leaves it to be read here, as before.
        current_user._get_current_object()
        loaded = g.get(_LOADED, {})
        if str(session["_user_id"]) in loaded:
            row = loaded[str(session["_user_id"])]
        else:
            row = _db().execute(
                select(UserSession.user_id, UserSession.credential_version, UserSession.seen_on,
                       UserAccount.credential_version.label("current"), UserAccount.active)
                .join(UserAccount, UserAccount.id == UserSession.user_id)
                .where(UserSession.id == _digest(sid))).first()
    if row is None or str(row.user_id) != str(session["_user_id"]) or \
            row.credential_version != row.current or not row.active:
        logout_user()
        session.pop(SESSION_KEY, None)
        message = ended_message()
        if request.path.startswith("/api/"):
            return jsonify(message=message), 401
        flash(message, "warning")
        sm = current_app.appbuilder.sm
        return redirect(url_for(f"{sm.auth_view.__class__.__name__}.login"))
    moment = clock.utcnow()
    if moment - row.seen_on > _SEEN_EVERY:
        try:
            _db().execute(update(UserSession).where(UserSession.id == _digest(sid))
                          .values(seen_on=moment))
            _db().commit()
        except OperationalError:
            _db().rollback()  # only the purge of old rows reads it: another request will write it
    return None


def _rotate_after_own_change(response):
    """After one's own password change: this session goes on under a new id and version."""
    if g.get(_ROTATE) and "_user_id" in session:
        from flask_login import current_user

        if current_user.is_authenticated:
            start_session(current_user)
    return response


# --- tokens -----------------------------------------------------------------------------------

def _user_version(user_id) -> tuple[int | None, bool]:
    from app.security.models import UserAccount

    row = _db().execute(select(UserAccount.credential_version, UserAccount.active)
                        .where(UserAccount.id == int(user_id))).first()
    return (row[0], bool(row[1])) if row else (None, False)


def record_refresh_token(token: str) -> None:
    """Let a newly issued refresh token be used (once)."""
    from app.security.models import RefreshToken

    payload = decode_token(token)

    def write(db_session):
        db_session.execute(delete(RefreshToken).where(RefreshToken.expires_on < clock.utcnow()))
        db_session.add(RefreshToken(jti=payload["jti"], user_id=int(payload["sub"]),
                                    expires_on=clock.from_timestamp(payload["exp"])))

    busy.write_retrying(_db(), write)


def use_refresh_token(jti: str) -> bool:
    """Spend a refresh token: True for the one request that deletes its row."""
    from app.security.models import RefreshToken

    deleted = _db().execute(delete(RefreshToken).where(RefreshToken.jti == jti)).rowcount
    _db().commit()
    return deleted == 1


def _install_jwt(jwt_manager) -> None:
    @jwt_manager.additional_claims_loader
    def _claims(identity):
        version, _ = _user_version(identity)
        return {"cv": version}

    @jwt_manager.token_in_blocklist_loader
    def _ended(jwt_header, payload) -> bool:
        from app.security.models import RefreshToken

        version, active = _user_version(payload.get("sub"))
        if version is None or not active or payload.get("cv") != version:
            return True
        if payload.get("type") == "refresh":
            return _db().execute(select(RefreshToken.jti)
                                 .where(RefreshToken.jti == payload.get("jti"))).first() is None
        return False

    @jwt_manager.revoked_token_loader
    def _answer(jwt_header, payload):
        return jsonify(message=ended_message()), 401


def install(app) -> None:
    app.before_request(_check_session)
    app.after_request(_rotate_after_own_change)
    _install_jwt(app.appbuilder.sm.jwt_manager)
