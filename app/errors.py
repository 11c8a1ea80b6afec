"""Errors the user is told about in Chinese (a form message, an API 422), never a 500; and
`committed`, the one place where a write that lost a race with another user's, or met a
database that failed under it, becomes such a message."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.i18n import N_


class DomainError(Exception):
    """A business rule refused the operation; the message is for the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


# --- the database failing under the panel (full disk, read-only file, server restarting) ------
# A request that meets one is told so in Chinese (HTML page or API JSON, 503), its transaction
# rolled back: nothing half-written, no traceback, and the next request starts afresh (the
# engine's pool_pre_ping replaces connections a restarted server closed).

DATABASE_FULL = "数据库存储空间已满，本次操作未保存。请联系系统管理员清理空间后重试。"
DATABASE_READ_ONLY = "数据库当前为只读状态，本次操作未保存。请联系系统管理员。"
DATABASE_UNAVAILABLE = "数据库暂时无法访问，本次操作未完成，请稍后重试。"


class Conflict(DomainError):
    """Another user's write came first (the row moved on, the key was taken): 409 on the API."""


class DatabaseFailure(DomainError):
    """The database, not the input, refused a write (full, read-only, gone): 503, not 422."""


def database_failure(exc: BaseException) -> str | None:
    """The message for a database that failed under the request, or None if `exc` is not one
    (a bug stays a 500, logged)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    text = str(getattr(exc, "orig", exc)).lower()
    if "full" in text or "no space left" in text or "could not extend" in text:
        return DATABASE_FULL
    if "readonly" in text or "read-only" in text or "read only" in text:
        return DATABASE_READ_ONLY
    return DATABASE_UNAVAILABLE


NUMBER_OUT_OF_RANGE = "数值超出允许的范围，请检查后重试"

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


def bound_url_ids(app) -> None:
    """`<int:…>` in a route takes only what a database can compare: a URL id past 64 bits was
    handed to SQLite, whose OverflowError made a 500 (15-22 generated API cases per role).
    No row carries such an id, so the route does not match: 404. (FAB's `<pk>` routes are
    bounded where they read the row, `ScopedInterface.get`.) Set before any route is added."""
    from werkzeug.routing import IntegerConverter

    class BoundedInteger(IntegerConverter):
        def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
            super().__init__(map, fixed_digits, min, ID_RANGE.stop - 1 if max is None else max,
                             signed)

    app.url_map.converters["int"] = BoundedInteger


# --- a write racing another user's ------------------------------------------------------------
# Lost: the other write is in and ours cannot be (a version column no longer matching, a unique
# key taken, PostgreSQL's serialization failure 40001 or deadlock 40P01, MySQL's deadlock 1213):
# the caller's message says what happened. Waited out: the other writer held its lock past the
# timeout (SQLite busy/locked, PostgreSQL 55P03, MySQL's lock wait 1205): nothing is decided yet.
LOST_SQLSTATES = {"40001", "40P01"}
WAITED_SQLSTATES = {"55P03"}
LOST_MYSQL_CODES = {1213}
WAITED_MYSQL_CODES = {1205}
SQLITE_BUSY, SQLITE_LOCKED = 5, 6
WAITED_OUT = "该记录正由他人同时保存，本次未保存；请稍后重试"
DUPLICATE = "该记录与他人刚保存的记录冲突（重复），未保存；请刷新后查看"


def race_of(exc: BaseException) -> str | None:
    """"lost", "waited" or None (not a race with another writer)."""
    if isinstance(exc, (StaleDataError, IntegrityError)):
        return "lost"
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    state = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
    if state in LOST_SQLSTATES or code in LOST_MYSQL_CODES:
        return "lost"
    sqlite = getattr(orig, "sqlite_errorcode", None)  # extended codes keep the primary's low byte
    if (state in WAITED_SQLSTATES or code in WAITED_MYSQL_CODES
            or (sqlite is not None and sqlite & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED))):
        return "waited"
    return None


def refused_by_database(exc: BaseException, conflict_message: str = DUPLICATE,
                        waited_message: str = WAITED_OUT) -> DomainError | None:
    """What the user is told of a write the database refused (None: a bug, left to raise)."""
    race = race_of(exc)
    if race == "lost":
        return Conflict(conflict_message)
    if race == "waited":
        return Conflict(waited_message)
    told = database_failure(exc)  # full, read-only, gone: said as such, never the SQL text
    return DatabaseFailure(told) if told is not None else None


@contextmanager
def committed(session, conflict_message: str = DUPLICATE, *, commit: bool = True,
              waited_message: str = WAITED_OUT):
    """Run the block's writes and commit them (`commit=False`: flush only, for FAB's own add
    and edit that commit next), or roll back once and raise: a lost race as `Conflict` with the
    caller's `conflict_message` (what the other user did: "该心愿已被他人认领"), a lock waited
    out as `Conflict(waited_message)`, a failed database as `DatabaseFailure`; anything else
    (a `DomainError` from a model's rule, a bug) unchanged."""
    try:
        yield session
        if commit:
            session.commit()
        else:
            session.flush()
    except BaseException as exc:
        session.rollback()
        told = refused_by_database(exc, conflict_message, waited_message)
        if told is None:
            raise
        raise told from None


# The panel's own error pages (issue 27): Werkzeug's are bare English ("Forbidden", "Not Found").
ERROR_PAGES = {
    403: ("fa-lock", N_("无权访问"), N_("您的角色无权访问该页面或执行该操作。如需办理，请联系上级管理员。")),
    404: ("fa-search", N_("页面不存在"), N_("要找的页面或记录不存在，或不在您的管理范围内。")),
    405: ("fa-ban", N_("请求方式不受支持"), N_("该页面不接受这种请求方式，请从菜单或页面上的按钮进入。")),
    500: ("fa-exclamation-triangle", N_("系统出错了"), N_("处理请求时发生了意外错误，已记录在系统日志中。请稍后重试，或联系系统管理员。")),
}


def panel_error(exc):
    """A 403/404/405/500 as a page in the panel's layout and language (the API answers JSON:
    its own handlers, and `api_routing` for addresses no endpoint takes). A 500 whose layout
    cannot render either (it reads the user and the menu) is told in a page of its own."""
    from flask import current_app, jsonify, render_template, request
    from werkzeug.exceptions import HTTPException, InternalServerError

    from app.i18n import gettext

    if not isinstance(exc, HTTPException):  # an unhandled exception reaches the 500 handler
        exc = InternalServerError(original_exception=exc)
    code = exc.code if exc.code in ERROR_PAGES else 500
    icon, title, message = ERROR_PAGES[code]
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(message=gettext(title)), code
    headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
    # The way back is the page the user came from, when it is the panel's own (a plain link:
    # no script URL, which the pages' content policy and the markup checks refuse).
    back = request.referrer if (request.referrer or "").startswith(request.host_url) else None
    try:
        page = render_template("gongjian/error.html", appbuilder=current_app.appbuilder,
                               code=code, icon=icon, title=gettext(title),
                               message=gettext(message), back=back)
    except Exception:  # the layout itself failed: say so without it, never a traceback
        current_app.logger.exception("错误页无法按页面布局显示")
        page = current_app.jinja_env.get_template("gongjian/database_error.html").render(
            message=gettext(message))
    return page, code, headers


# FAB reads an API's `q` with prison, whose parser recurses once per "(": a `q` of a few thousand
# parentheses raised RecursionError, which FAB's @safe answered with a 500 on every endpoint that
# reads `q` (_info, related, distinct, export, an item's columns). No filter the pages or a client
# send nests more than a few levels: a deeper one is refused before any endpoint parses it.
MAX_Q_NESTING = 32


def q_nesting(text: str) -> int:
    """How deep `text` nests brackets outside its quoted strings (rison's '…' with ! escaping;
    JSON's "…" with \\ escaping), which is how deep a parser of it recurses."""
    deepest = depth = 0
    quote, escaped = None, False
    for ch in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == ("!" if quote == "'" else "\\"):
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def register_error_handlers(app) -> None:
    from flask import jsonify, request

    @app.before_request
    def refuse_deep_q():
        if request.path.startswith("/api/") and \
                q_nesting(request.args.get("q", "")) > MAX_Q_NESTING:
            return jsonify(message=f"查询参数 q 嵌套过深（超过 {MAX_Q_NESTING} 层）"), 400
        return None

    def handle(exc):
        from app.extensions import db

        message = database_failure(exc)
        app.logger.error("数据库错误（%s %s）：%s", request.method, request.path, exc)
        try:
            db.session.rollback()
        except (OperationalError, InterfaceError):  # gone with the server: see below
            pass
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return jsonify(message=message), 503
        # A page of its own, rendered without the context processors: the panel's layout and
        # they would ask the database (user, menu, permissions) that just failed.
        page = app.jinja_env.get_template("gongjian/database_error.html").render(message=message)
        return page, 503, {"Content-Type": "text/html; charset=utf-8", "Retry-After": "30"}

    app.register_error_handler(OperationalError, handle)
    app.register_error_handler(InterfaceError, handle)

    @app.teardown_appcontext
    def drop_broken_connection(exc):
        # Runs before Flask-SQLAlchemy's session.remove() (the last registered runs first). A
        # connection the server closed under the request cannot even roll back: that would
        # raise in the teardown and replace the answer with a bare 500. Drop it instead.
        from app.extensions import db

        try:
            db.session.rollback()
        except (OperationalError, InterfaceError):
            db.session().invalidate()

    def api_routing(exc):
        # A URL under /api/ that no endpoint takes (a negative id, a wrong method) is answered
        # in JSON like the API's own errors, not with Werkzeug's HTML page (issue #10).
        if request.path.startswith("/api/"):
            message = "找不到该地址" if exc.code == 404 else "该地址不接受此请求方法"
            # A 405 says which methods the address takes (RFC 9110 §15.5.6), as Werkzeug's does.
            headers = {k: v for k, v in exc.get_headers() if k == "Allow"}
            return jsonify(message=message), exc.code, headers
        return panel_error(exc)

    app.register_error_handler(404, api_routing)
    app.register_error_handler(405, api_routing)
    app.register_error_handler(403, panel_error)
    app.register_error_handler(500, panel_error)

    def out_of_range(exc):
        # Wherever a URL argument reaches a query as a number past 64 bits (a filter value, a
        # page), SQLite's driver cannot bind it: OverflowError. Routes and reads by id bound
        # ids themselves (bound_url_ids, ScopedInterface.get); this is the net under the rest —
        # a bad request, not a 500. (PostgreSQL and MariaDB compare such numbers and find none.)
        from app.extensions import db

        db.session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(message=NUMBER_OUT_OF_RANGE), 400
        return NUMBER_OUT_OF_RANGE, 400, {"Content-Type": "text/plain; charset=utf-8"}

    app.register_error_handler(OverflowError, out_of_range)

    def public_form_expired(exc):
        # A resident's form (/public/…) kept open past the session that signed its CSRF token:
        # a Chinese page that leads back to it, not Werkzeug's English 400.
        if not request.path.startswith("/public/"):
            return exc
        from flask import render_template

        return render_template(
            "public/message.html", appbuilder=app.appbuilder, title="页面已过期",
            message="页面停留时间过长或已失效，请返回上一页刷新后重新提交。"), 400

    from flask_wtf.csrf import CSRFError

    app.register_error_handler(CSRFError, public_form_expired)

    jwt_manager = getattr(app.appbuilder.sm, "jwt_manager", None)
    if jwt_manager is not None:
        @jwt_manager.invalid_token_loader
        def unreadable_token(reason):
            # A malformed or forged token proves no identity: 401 like a missing one
            # (Flask-JWT-Extended's default said 422, as if the request body were at fault).
            return jsonify(message="登录凭证无效，请重新登录"), 401
