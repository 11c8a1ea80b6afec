"""The rendered board kept between requests (issue 29): the dashboard's sections as HTML, per
node, period and viewer — what the viewer may see (its data scope: all data, the subtrees, units
and members it is granted, whether it sees personal data) and the language it reads — so that
ten people opening 数据看板 do not each compute some thirty figures over the whole city.

- **Where.** In Redis when `REDIS_URL` is set (every worker and host shares one copy), else in
  the process's memory (`DASHBOARD_CACHE_ENTRIES` boards at most): cachelib's RedisCache or
  SimpleCache, one interface. A Redis that does not answer is no reason to fail: the board is
  computed, as without a cache, with a warning in the log.
- **How long.** A copy is served while the rollups it read are unchanged (`rollups.generation`:
  the last apply, and without a queue the writes the page would apply) and for at most
  `DASHBOARD_CACHE_SECONDS` (60 s) — the bound of the figures read raw or live (overdue now,
  meetings, wishes, agreements), which no generation tracks; the page says so beside
  "数据截至 HH:MM". The page's frame (menu, user, nonce, organisation box) is made per request.
- **Keys** are a SHA-256 of all the above (and the day: a board of yesterday's current period
  is not today's), so two viewers share a copy only when everything it is made from is the same.
"""
from __future__ import annotations

import hashlib
import logging

import redis
from cachelib import RedisCache, SimpleCache
from flask import current_app, request
from flask_babel import get_locale

from app import clock
from app.security.principal import current_principal

log = logging.getLogger(__name__)

BOARD_CACHE_KEY = "gongjian_board_cache"


def _backend():
    app = current_app
    backend = app.extensions.get(BOARD_CACHE_KEY)
    if backend is None:
        url = app.config.get("REDIS_URL")
        seconds = app.config["DASHBOARD_CACHE_SECONDS"]
        if url:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            backend = RedisCache(client, default_timeout=seconds,
                                 key_prefix=f"{app.config['RATELIMIT_KEY_PREFIX']}:board:")
        else:
            backend = SimpleCache(threshold=app.config["DASHBOARD_CACHE_ENTRIES"],
                                  default_timeout=seconds)
        app.extensions[BOARD_CACHE_KEY] = backend
    return backend


def enabled() -> bool:
    return current_app.config["DASHBOARD_CACHE_SECONDS"] > 0


def board_key(period_code: str, org_id: int | None, generation: tuple) -> str:
    principal = current_principal()
    scope = (principal.sees_all, principal.org_paths, principal.unit_ids, principal.member_ids,
             principal.reveals_personal_data)
    made_of = (period_code, org_id, scope, str(get_locale()), request.script_root,
               clock.today().isoformat(), generation)
    return hashlib.sha256(repr(made_of).encode()).hexdigest()


def get(key: str) -> dict | None:
    try:
        return _backend().get(key)
    except (redis.RedisError, OSError) as exc:
        log.warning("board cache unavailable, computing the board: %s", exc)
        return None


def put(key: str, board: dict) -> None:
    try:
        _backend().set(key, board)
    except (redis.RedisError, OSError) as exc:
        log.warning("board cache unavailable, board not kept: %s", exc)


def clear() -> None:
    """Forget every kept board (the bench's cold requests; tests)."""
    try:
        _backend().clear()
    except (redis.RedisError, OSError) as exc:
        log.warning("board cache unavailable, nothing cleared: %s", exc)
