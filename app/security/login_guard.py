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

The clock is `now()`, so that tests can move it instead of waiting.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import (current_app, flash, g, has_app_context, has_request_context, jsonify, redirect,
                   request, session, url_for)
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.security.api import SecurityApi as FabSecurityApi
from flask_appbuilder.security.views import AuthDBView as FabAuthDBView
from flask_login import current_user, logout_user
from limits import parse as parse_limit
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history
from werkzeug.security import check_password_hash

from app.i18n import gettext


def now() -> datetime:
    return datetime.now()


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


class Attempt:
    """One login attempt, by the form or the API: refused while the account is locked or the
    username is tried too often from one address; counted, and locking, when it fails."""

    def __init__(self, sm, username: str | None):
        self.sm = sm
        self.username = (username or "").strip()
        self.account = None
        self.note: dict = {}

    @property
    def account_id(self) -> int | None:
        return self.account.id if self.account is not None else None

    def run(self, authenticate, password):
        """`authenticate(username, password)` is FAB's check; returns the user or None."""
        if not self.username:
            return authenticate(self.username, password)
        self.account = self.sm.find_user(username=self.username) or \
            self.sm.find_user(email=self.username)
        config = current_app.config
        moment = now()
        account = self.account
        if account is not None and account.locked_until is not None:
            if account.locked_until > moment:
                return self._refuse("locked", self._locked_message(account.locked_until), 401)
            account.locked_until = None  # the lock has run out: count afresh
            account.fail_login_count = 0
            self.sm.update_user(account)
        if not self._within_rate_limit():
            return self._refuse("throttled", gettext("登录尝试过于频繁，请稍后再试"), 429,
                                retry_after=60)
        user = authenticate(self.username, password)
        if user is None:
            if account is not None and account.is_active and \
                    (account.fail_login_count or 0) >= config["LOGIN_MAX_FAILURES"]:
                account.locked_until = moment + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
                self.sm.update_user(account)
                self.note["locked_until"] = account.locked_until.isoformat(timespec="seconds")
                g.setdefault(_REFUSAL, Refusal("locked", self._locked_message(
                    account.locked_until, just_now=True), 401))
            return None
        if user.must_change_password and has_request_context() and \
                request.path.startswith("/api/"):
            return self._refuse("must_change_password", gettext(
                "须先修改管理员设置的初始密码：请登录网页修改密码后再使用接口"), 403)
        return user

    def _refuse(self, reason: str, message: str, status: int, retry_after: int | None = None):
        self.note["refused"] = reason
        g.setdefault(_REFUSAL, Refusal(reason, message, status, retry_after))
        return None

    def _within_rate_limit(self) -> bool:
        limiter = current_app.appbuilder.sm.limiter
        if not limiter.enabled:
            return True
        item = parse_limit(current_app.config["LOGIN_RATE_LIMIT"])
        return limiter.limiter.hit(item, "login", self.username.lower(), client_address())

    @staticmethod
    def _locked_message(until: datetime, just_now: bool = False) -> str:
        minutes = max(1, -(-int((until - now()).total_seconds()) // 60))
        failures = current_app.config["LOGIN_MAX_FAILURES"]
        if just_now:
            return gettext("连续 %(n)d 次登录失败，账号已被锁定 %(m)d 分钟，请稍后再试",
                           n=failures, m=minutes)
        return gettext("账号已被锁定（连续 %(n)d 次登录失败），请于 %(until)s 后再试（约 %(m)d 分钟）",
                       n=failures, until=until.strftime("%H:%M"), m=minutes)


class AuthDBView(FabAuthDBView):
    """FAB's login form, telling why a login was refused (a lock, too many attempts)."""

    @property
    def invalid_login_message(self):
        refused = refusal()
        return refused.message if refused else gettext("用户名或密码错误，请重试")


class SecurityApi(FabSecurityApi):
    """FAB's API login, answering a refusal with its reason (429 when throttled)."""

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
    if pk is not None and str(pk).isdigit():
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
            if actor is not None:
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
    moment = now().timestamp()
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
