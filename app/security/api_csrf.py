"""CSRF on the REST API for browser sessions.

FAB exempts its API blueprints from Flask-WTF's CSRF check (a bearer token is not sent by a
browser on its own, so token requests cannot be forged), yet our APIs also accept the session
cookie (`allow_browser_login`), which a browser *does* send on a cross-site form post: with a
community admin's cookie, another site could move a need or replace an agreement's scan. So
under /api/, an unsafe request that carries no bearer token — that would be served on the
cookie — must bring the session's CSRF token in the `X-CSRFToken` header (which a cross-site
form cannot set) and come from this origin (`Origin`, else `Referer`). The panel's pages print
the token in `<meta name="csrf-token">` and app/static/js/gongjian.js sends it on every unsafe
AJAX request.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import jsonify, request, session
from flask_wtf.csrf import ValidationError, validate_csrf

from app.i18n import gettext

HEADER = "X-CSRFToken"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Logging in by the API authenticates by its body, not by a cookie.
_EXEMPT = ("/api/v1/security/login",)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _same_origin() -> bool:
    ours = _origin(request.host_url)
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return bool(source) and source != "null" and _origin(source) == ours


def _check_cookie_write():
    if request.method in _SAFE or not request.path.startswith("/api/") or \
            request.path in _EXEMPT:
        return None
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return None  # served on the token, never on the cookie
    if "_user_id" not in session:
        return None  # no browser session: FAB asks for a token and answers 401
    if not _same_origin():
        return jsonify(message=gettext("跨站请求被拒绝：请求来源与本站不一致")), 403
    try:
        validate_csrf(request.headers.get(HEADER))
    except ValidationError:
        return jsonify(message=gettext("缺少或无效的 CSRF 令牌（X-CSRFToken），请刷新页面后重试")), 403
    return None


def install(app) -> None:
    app.before_request(_check_cookie_write)
