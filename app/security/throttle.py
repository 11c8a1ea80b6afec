"""The login throttle's counters: rate limits per account and address, and the failure count
and lock of usernames that name no account — in the rate limiter's storage (FAB's
Flask-Limiter: `RATELIMIT_STORAGE_URI`, memory by default, Redis when several processes or
hosts serve, so that they share one limit).

When that storage fails (Redis down) logins must go on: the counters fall back to this
process's memory, with a warning in the log, and the shared storage is tried again after
`RATELIMIT_RETRY_SECONDS` — never a 500 for every login, and never everyone locked out."""
from __future__ import annotations

import logging
import threading
import time

from flask import current_app
from limits import parse as parse_limit
from limits.storage import MemoryStorage

log = logging.getLogger(__name__)
_EXTENSION = "gongjian_login_throttle"


class Throttle:
    def __init__(self, limiter, config):
        self.storage = limiter.storage
        self.strategy = limiter.limiter
        self.fallback_storage = MemoryStorage()
        self.fallback_strategy = type(self.strategy)(self.fallback_storage)
        self.prefix = config.get("RATELIMIT_KEY_PREFIX") or ""
        self.retry = config.get("RATELIMIT_RETRY_SECONDS", 30)
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _run(self, operation):
        """`operation(strategy, storage)` on the shared storage, else on this process's."""
        if time.monotonic() >= self._down_until:
            try:
                return operation(self.strategy, self.storage)
            except Exception as error:  # noqa: BLE001 — any storage failure: fall back
                with self._lock:
                    self._down_until = time.monotonic() + self.retry
                log.warning("rate limit storage unavailable (%s: %s): login limits are kept "
                            "in this process for %ss", type(error).__name__, error, self.retry)
        return operation(self.fallback_strategy, self.fallback_storage)

    def key(self, *parts) -> str:
        return "/".join((self.prefix, "gongjian", *map(str, parts)))

    def hit(self, limit: str, *identifiers) -> bool:
        """One attempt against `limit` (e.g. "10 per minute"): False when it is exceeded."""
        item = parse_limit(limit)
        key = self.key(*identifiers)
        return self._run(lambda strategy, _: strategy.hit(item, key))

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._run(lambda _, storage: storage.incr(key, expiry, amount=amount))

    def get(self, key: str) -> int:
        return self._run(lambda _, storage: storage.get(key))

    def clear(self, key: str) -> None:
        self._run(lambda _, storage: storage.clear(key))


def throttle() -> Throttle:
    app = current_app._get_current_object()
    found = app.extensions.get(_EXTENSION)
    if found is None:
        found = app.extensions[_EXTENSION] = Throttle(app.appbuilder.sm.limiter, app.config)
    return found
