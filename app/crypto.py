"""身份证号 at rest: encrypted (Fernet) so a dump alone does not expose it, and a keyed hash
(HMAC-SHA256) for uniqueness and lookup. Both keys derive from one secret, DATA_KEY."""
from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


@lru_cache(maxsize=4)
def _keys(secret: str) -> tuple[Fernet, bytes]:
    if not secret:
        raise RuntimeError("未配置身份证号加密密钥（GONGJIAN_DATA_KEY）")
    enc = hashlib.sha256(b"gongjian/encrypt/" + secret.encode()).digest()
    mac = hashlib.sha256(b"gongjian/hash/" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(enc)), mac


def _current() -> tuple[Fernet, bytes]:
    return _keys(current_app.config["DATA_KEY"])


def encrypt(plain: str) -> str:
    return _current()[0].encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current()[0].decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def keyed_hash(plain: str) -> str:
    return hmac.new(_current()[1], plain.encode(), hashlib.sha256).hexdigest()
