"""Account security: who gets in, how often they may try, and how long a session lasts.

- **Lockout.** `LOGIN_MAX_FAILURES` consecutive failed logins lock the account for
  `LOGIN_LOCK_MINUTES`; during the lock even the right password is refused, with a message
  saying so. The login form and `/api/v1/security/login` both authenticate through
  `SecurityManager.auth_user_db`, which runs each attempt through `Attempt`: one rule for both.
- **Rate limiting**, keyed by username *and* client address (FAB's Flask-Limiter storage), so
  that many users behind one address are not throttled together.
- **Password policy** (`password_policy`): FAB's `FAB_PASSWORD_COMPLEXITY_VALIDATOR` hook, which
  its user forms, its user API and both password-change forms call.
- **Forced change.** A password someone else set (an administrator creating or resetting an
  account) must be replaced at the next login where `PASSWORD_CHANGE_AT_FIRST_LOGIN` is on
  (production); until then every page leads to the password form and the API issues no token.
- **Sessions and headers.** An idle session ends after `SESSION_IDLE_MINUTES`; responses carry
  a Content-Security-Policy whose script nonce FAB's templates print (`baselib.get_nonce()`
  asks for a `csp_nonce` global), frame denial, nosniff and a referrer policy.

The clock is `now()` (naive UTC, app.clock), so that tests can move it instead of waiting.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import (
    current_app,
    flash,
    g,
    has_app_context,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.security.api import SecurityApi as FabSecurityApi
from flask_appbuilder.security.views import AuthDBView as FabAuthDBView
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    jwt_required,
)
from flask_login import current_user, logout_user
from sqlalchemy import and_, case, event, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history
from werkzeug.security import check_password_hash

from app import clock, ops
from app.i18n import gettext
from app.security import busy, sessions
from app.security.throttle import throttle
from app.validators import ascii_digits


def now() -> datetime:
    return clock.utcnow()


# --- lockout and rate limiting ----------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """Why a login was refused before (or despite) the password: told to the user."""

    reason: str  # locked, throttled, must_change_password
    message: str
    status: int  # the API's answer
    retry_after: int | None = None  # seconds


_REFUSAL = "login_refusal"


def refusal() -> Refusal | None:
    """The refusal of this request's login attempt, if any."""
    return g.get(_REFUSAL) if has_app_context() else None


def client_address() -> str:
    """The client's address (behind a proxy, GONGJIAN_PROXY_FIX makes it the real one)."""
    return (request.remote_addr or "-") if has_request_context() else "-"


def count_attempt(session, user_id: int, moment: datetime) -> tuple[int, datetime | None]:
    """Count one login attempt against the account and commit it: (the count including this
    attempt, the lock in force). A lock that has run out is lifted and the count restarts.

    One UPDATE does it, so concurrent attempts queue on the row and each sees its own count;
    the count is read back in the same transaction (RETURNING where the engine has it — MariaDB
    10.11 has none for UPDATE, but its row lock holds until the commit, so the SELECT after it
    reads this attempt's own value). SET clauses are ordered for MySQL, which assigns left to
    right and lets later expressions see earlier results: the count, which reads the old lock,
    comes first."""
    from app.security.models import UserAccount as User

    expired = and_(User.locked_until.is_not(None), User.locked_until <= moment)
    statement = (update(User).where(User.id == user_id)
                 .values({User.fail_login_count: case(
                              (expired, 1), else_=func.coalesce(User.fail_login_count, 0) + 1),
                          User.locked_until: case((expired, None), else_=User.locked_until)})
                 .execution_options(synchronize_session=False))
    session.commit()  # SQLite: a write begun inside a read transaction may not wait its turn
    try:
        if session.get_bind().dialect.update_returning:
            row = session.execute(statement.returning(User.fail_login_count,
                                                      User.locked_until)).one()
        else:
            session.execute(statement)
            row = session.execute(select(User.fail_login_count, User.locked_until)
                                  .where(User.id == user_id)).one()
        session.commit()
    except Exception:
        session.rollback()
        raise
    return int(row[0]), row[1]


def lock_account(session, user_id: int, moment: datetime) -> datetime:
    """Lock the account from now for LOGIN_LOCK_MINUTES unless a lock is in force already (a
    concurrent attempt set it): the lock in force afterwards."""
    from app.security.models import UserAccount as User

    until = moment + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
    busy.write_retrying(session, lambda session: session.execute(
        update(User).where(User.id == user_id,
                           or_(User.locked_until.is_(None), User.locked_until <= moment))
        .values(locked_until=until).execution_options(synchronize_session=False)))
    current = session.execute(select(User.locked_until).where(User.id == user_id)).scalar()
    session.commit()
    return current if current is not None and current > moment else until


class _Ghost:
    """A username that names no account, failing and locking as an account would — counted
    in the rate limiter's storage, not in ab_user — so that the answers do not tell which
    usernames exist."""

    _KEEP = 24 * 3600  # failures of a name are forgotten a day after its first

    def __init__(self, username: str):
        self.name = username.lower()
        self.throttle = throttle()

    def _key(self, what: str) -> str:
        return self.throttle.key("ghost", what, self.name)

    def locked_until(self) -> datetime | None:
        stamp = self.throttle.get(self._key("lock"))
        return clock.from_timestamp(stamp) if stamp else None

    def count(self) -> int:
        return self.throttle.incr(self._key("failures"), self._KEEP)

    def lock(self, moment: datetime) -> datetime:
        """Lock the name (unless locked already): the lock's end. The stored number is that
        end in epoch seconds, added atomically: the first to add it sees exactly its own
        number, a concurrent second takes its addition back and keeps the first's."""
        minutes = current_app.config["LOGIN_LOCK_MINUTES"]
        until = int(clock.timestamp(moment + timedelta(minutes=minutes)))
        key = self._key("lock")
        stamp = self.throttle.incr(key, minutes * 60, amount=until)
        if stamp != until:
            stamp = self.throttle.incr(key, minutes * 60, amount=-until)
        else:
            self.throttle.clear(self._key("failures"))  # the count restarts after the lock
        return clock.from_timestamp(stamp)


class Attempt:
    """One login attempt, by the form or the API: refused while the account is locked or the
    username is tried too often from one address; counted, and locking, when it fails.

    The attempt is counted *before* the password is looked at, by one atomic increment whose
    result is read back in the same transaction: concurrent attempts each get their own number,
    so only the first LOGIN_MAX_FAILURES are checked and the later ones wait for those to settle
    (refused as locked when one of them fails), however many arrive at once (FAB's own
    `fail_login_count += 1` in Python lost the race: 60 parallel guesses ended at a count of 1).
    An attempt that cannot be counted is refused, its password unchecked."""

    def __init__(self, sm, username: str | None):
        self.sm = sm
        self.username = (username or "").strip()
        self.account = None
        self.account_id: int | None = None
        self.note: dict = {}

    def run(self, authenticate, password):
        """`authenticate(username, password)` is FAB's check; returns the user or None."""
        if not self.username:
            return authenticate(self.username, password)
        self.account = self.sm.find_user(username=self.username) or \
            self.sm.find_user(email=self.username)
        self.account_id = self.account.id if self.account is not None else None
        config = current_app.config
        moment = now()
        account = self.account
        ghost = None if account is not None else _Ghost(self.username)
        locked_until = account.locked_until if account is not None else ghost.locked_until()
        if locked_until is not None and locked_until > moment:
            return self._refuse("locked", self._locked_message(locked_until), 401)
        if not self._within_rate_limit():
            return self._refuse("throttled", gettext("登录尝试过于频繁，请稍后再试"), 429,
                                retry_after=60)
        if account is not None:
            try:
                count, locked_until = self._count_and_settle(moment)
            except SQLAlchemyError:
                self.sm.session.rollback()
                current_app.logger.warning("login attempt for user %s not counted: refused",
                                           account.id, exc_info=True)
                return self.refuse_busy()
        else:
            count, locked_until = ghost.count(), None
        if locked_until is not None and locked_until > moment:
            return self._refuse("locked", self._locked_message(locked_until), 401)
        if count > config["LOGIN_MAX_FAILURES"]:
            # A name without an account: nothing in flight can succeed, so it is locked now.
            until = self._lock(ghost, moment)
            return self._refuse("locked", self._locked_message(until), 401)
        user = authenticate(self.username, password)
        if user is None:
            ops.login_failed("password")
            if count >= config["LOGIN_MAX_FAILURES"]:
                until = self._lock(ghost, moment)
                self.note["locked_until"] = until.isoformat(timespec="seconds")
                g.setdefault(_REFUSAL, Refusal("locked", self._locked_message(
                    until, just_now=True), 401))
            return None
        if user.must_change_password and has_request_context() and \
                request.path.startswith("/api/"):
            return self._refuse("must_change_password", gettext(
                "须先修改管理员设置的初始密码：请登录网页修改密码后再使用接口"), 403)
        return user

    def _count_and_settle(self, moment: datetime):
        """Count this attempt: (its count, the lock in force). Counted beyond the limit, the
        attempt has more earlier ones in flight than the limit allows: it waits for them to
        settle, without its password being checked — one of them failing locks the account
        (this one is then refused as locked), one succeeding resets the count (this one is
        counted afresh), so that parallel guesses get no more checks than sequential ones
        and parallel right passwords are not refused."""
        from app.security.models import UserAccount as User

        session, user_id = self.sm.session, self.account_id
        limit = current_app.config["LOGIN_MAX_FAILURES"]
        deadline = time.monotonic() + current_app.config.get("LOGIN_SETTLE_SECONDS", 10)
        count, locked_until = count_attempt(session, user_id, moment)
        while count > limit and (locked_until is None or locked_until <= moment):
            if time.monotonic() > deadline:
                # Nothing settled (attempts that never finished left the count high): lock,
                # and the count restarts when the lock runs out, rather than wait forever.
                return count, lock_account(session, user_id, moment)
            time.sleep(0.05)
            now_count, locked_until = session.execute(
                select(User.fail_login_count, User.locked_until).where(User.id == user_id)).one()
            session.commit()  # the next read sees the other attempts' commits (MariaDB)
            if (now_count or 0) < count and (locked_until is None or locked_until <= moment):
                count, locked_until = count_attempt(session, user_id, moment)
        return count, locked_until

    def _lock(self, ghost, moment: datetime) -> datetime:
        if ghost is not None:
            return ghost.lock(moment)
        return lock_account(self.sm.session, self.account_id, moment)

    def refuse_busy(self):
        """An attempt the database cannot count or record is refused unchecked (503)."""
        return self._refuse("busy", gettext("系统繁忙，请稍后再试"), 503, retry_after=5)

    def _refuse(self, reason: str, message: str, status: int, retry_after: int | None = None):
        self.note["refused"] = reason
        ops.login_failed(reason)
        g.setdefault(_REFUSAL, Refusal(reason, message, status, retry_after))

    def _within_rate_limit(self) -> bool:
        """Keyed by the account, whichever of its names was typed (username or e-mail), and
        by the client's address."""
        if not current_app.appbuilder.sm.limiter.enabled:
            return True
        account = f"user:{self.account_id}" if self.account_id is not None else \
            f"name:{self.username.lower()}"
        return throttle().hit(current_app.config["LOGIN_RATE_LIMIT"], "login", account,
                              client_address())

    @staticmethod
    def _locked_message(until: datetime, just_now: bool = False) -> str:
        minutes = max(1, -(-int((until - now()).total_seconds()) // 60))
        failures = current_app.config["LOGIN_MAX_FAILURES"]
        if just_now:
            return gettext("连续 %(n)d 次登录失败，账号已被锁定 %(m)d 分钟，请稍后再试",
                           n=failures, m=minutes)
        return gettext("账号已被锁定（连续 %(n)d 次登录失败），请于 %(until)s 后再试（约 %(m)d 分钟）",
                       n=failures, until=clock.to_local(until).strftime("%H:%M"), m=minutes)


class AuthDBView(FabAuthDBView):
    """FAB's login form, telling why a login was refused (a lock, too many attempts)."""

    @expose("/logout/", methods=["GET", "POST"])
    def logout(self):
        """Logging out is a POST with the form's CSRF token (the menu's button; CSRFProtect
        checks it): a link, or another site's image, must not end a session. A GET only
        leads back to the panel."""
        if request.method != "POST":
            return redirect(self.appbuilder.get_url_for_index)
        return super().logout()

    @property
    def invalid_login_message(self):
        refused = refusal()
        return refused.message if refused else gettext("用户名或密码错误，请重试")


class SecurityApi(FabSecurityApi):
    """FAB's API login, answering a refusal with its reason (429 when throttled); its refresh
    tokens are each used once (app/security/sessions.py)."""

    @expose("/login", methods=["POST"])
    @safe
    def login(self):
        response = super().login()
        token = (response.get_json(silent=True) or {}).get("refresh_token") \
            if response.status_code == 200 else None
        if token:
            sessions.record_refresh_token(token)
        return response

    @expose("/refresh", methods=["POST"])
    @jwt_required(refresh=True)
    @safe
    def refresh(self):
        """A new access token *and* a new refresh token; the one presented is spent."""
        if not sessions.use_refresh_token(get_jwt()["jti"]):
            return self.response(401, message=sessions.ended_message())
        identity = get_jwt_identity()
        refresh_token = create_refresh_token(identity=identity)
        sessions.record_refresh_token(refresh_token)
        return self.response(200, access_token=create_access_token(identity=identity,
                                                                    fresh=False),
                             refresh_token=refresh_token)

    def response_401(self):
        refused = refusal()
        if refused is None:
            return self.response(401, message=gettext("用户名或密码错误"))
        response = self.response(refused.status, message=refused.message)
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response


# --- password policy --------------------------------------------------------------------------

_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")


def password_policy(password: str) -> None:
    """FAB_PASSWORD_COMPLEXITY_VALIDATOR: long enough, three kinds of characters, not the
    username — refused with the rule it broke."""
    password = password or ""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        raise PasswordComplexityValidationError(gettext("密码长度至少为 %(n)d 位", n=minimum))
    if sum(bool(re.search(pattern, password)) for pattern in _CLASSES) < 3:
        raise PasswordComplexityValidationError(
            gettext("密码须包含大写字母、小写字母、数字、特殊字符中的至少三类"))
    username = _username_in_question()
    if username and len(username) >= 3 and username.lower() in password.lower():
        raise PasswordComplexityValidationError(gettext("密码不能包含用户名"))
    if _own_password_change() and check_password_hash(current_user.password or "", password):
        raise PasswordComplexityValidationError(gettext("新密码不能与当前密码相同"))


def _username_in_question() -> str | None:
    """Whose password this is: the user form's or the user API's username, the user a reset
    names (`?pk=`), else the user changing their own."""
    if not has_request_context():
        return None
    if request.form.get("username"):
        return request.form["username"]
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict) and body.get("username"):
        return str(body["username"])
    pk = request.args.get("pk") or (request.view_args or {}).get("pk")
    if pk is not None and ascii_digits(pk):
        user = current_app.appbuilder.sm.get_user_by_id(int(pk))
        return user.username if user is not None else None
    return current_user.username if current_user.is_authenticated else None


def _own_password_change() -> bool:
    return has_request_context() and current_user.is_authenticated and \
        (request.endpoint or "").startswith(current_app.appbuilder.sm.resetmypasswordview.__name__)


@event.listens_for(Session, "before_flush")
def _password_set_by_whom(session, flush_context, instances) -> None:
    """A password set by someone other than its user must be replaced at the next login (where
    configured); setting one's own clears that. Seeds and commands (no user) set none. A new
    password also lifts a lock: an administrator's reset unlocks the account."""
    from app.security.models import UserAccount
    from app.security.scope import current_principal

    if not has_app_context():
        return
    actor = current_principal().user_id
    forced = bool(current_app.config.get("PASSWORD_CHANGE_AT_FIRST_LOGIN"))
    for user in list(session.new) + list(session.dirty):
        if not isinstance(user, UserAccount):
            continue
        if user in session.new:
            # Accounts opened in bulk (app/services/accounts.py) always: their passwords were
            # printed on a slip.
            if getattr(user, "opened_in_bulk", False):
                user.must_change_password = True
            elif actor is not None:
                user.must_change_password = forced
        elif get_history(user, "password").has_changes():
            user.must_change_password = forced and actor is not None and actor != user.id
            user.locked_until = None
            user.fail_login_count = 0


# --- sessions, forced change, headers ---------------------------------------------------------

_SEEN = "_gj_seen"
_NONCE = "csp_nonce"


def csp_nonce() -> str:
    """This request's script nonce (FAB's templates print it on every script tag)."""
    if _NONCE not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def _is_static() -> bool:
    return request.endpoint in ("static", "appbuilder.static") or \
        request.path.startswith("/static/")


def _expire_idle_session():
    """End a session idle longer than SESSION_IDLE_MINUTES; keep an active one alive."""
    if _is_static():
        return None
    if "_user_id" not in session:
        session.pop(_SEEN, None)
        return None
    session.permanent = True  # the cookie lives as long as the idle limit, renewed per request
    moment = clock.timestamp(now())
    seen = session.get(_SEEN)
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    if seen is not None and moment - seen > idle:
        logout_user()  # recorded as a logout (app.security.manager)
        session.pop(_SEEN, None)
        message = gettext("超过 %(m)d 分钟未操作，已自动退出，请重新登录",
                          m=current_app.config["SESSION_IDLE_MINUTES"])
        if request.path.startswith("/api/"):
            return jsonify(message=message), 401
        flash(message, "warning")
        sm = current_app.appbuilder.sm
        return redirect(url_for(f"{sm.auth_view.__class__.__name__}.login"))
    session[_SEEN] = moment
    return None


def _require_new_password():
    """Until a forced password change is made, every page leads to the password form."""
    if _is_static() or not current_user.is_authenticated or \
            not getattr(current_user, "must_change_password", False):
        return None
    sm = current_app.appbuilder.sm
    form_view = sm.resetmypasswordview.__name__
    allowed = (f"{form_view}.", f"{sm.auth_view.__class__.__name__}.logout", "LocaleView.")
    if (request.endpoint or "").startswith(allowed):
        return None
    message = gettext("请先修改管理员设置的初始密码")
    if request.path.startswith("/api/"):
        return jsonify(message=message), 403
    flash(message, "warning")
    return redirect(url_for(f"{form_view}.this_form_get"))


def _security_headers(response):
    headers = response.headers
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    policy = current_app.config.get("CONTENT_SECURITY_POLICY")
    if policy:
        headers.setdefault("Content-Security-Policy", policy.format(nonce=csp_nonce()))
    return response


def install(app) -> None:
    """Set up the guard on the app (called by the SecurityManager, which owns logins)."""
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", password_policy)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.before_request(_expire_idle_session)
    app.before_request(_require_new_password)
    app.after_request(_security_headers)
