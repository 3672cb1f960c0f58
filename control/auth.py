"""API keys: ``Authorization: Bearer rtbk_<id>_<secret>``, stored only as SHA-256 hashes.

The public ``id`` part finds the row; the hash of the whole key is then compared with
``hmac.compare_digest`` so the time taken says nothing about how much of the secret matched.
Scopes are ordered: ``admin`` can do what ``write`` can, ``write`` what ``read`` can.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

import msgspec

from control.db import Database
from control.errors import Forbidden, Unauthorized

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_PREFIX = "rtbk_"


class Principal(msgspec.Struct, frozen=True):
    key_id: str
    scope: Scope

    def require(self, scope: Scope) -> None:
        if SCOPES.index(self.scope) < SCOPES.index(scope):
            raise Forbidden(
                f"this API key has scope {self.scope!r}; the request needs {scope!r}",
                required_scope=scope,
                key_scope=self.scope,
            )


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_id(key: str) -> str | None:
    if not key.startswith(_PREFIX):
        return None
    key_id, sep, secret = key[len(_PREFIX) :].partition("_")
    return key_id if sep and key_id and secret else None


def new_key() -> str:
    """A fresh key in the right format, e.g. for ``RTB_ADMIN_KEY`` when ``rtb up`` starts everything."""
    return f"{_PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, scope: Scope, name: str = "", now: float = 0.0) -> str:
        """Store a new key and return it; this is the only time the plain key exists."""
        key = new_key()
        self.add(key, scope, name, now)
        return key

    def add(self, key: str, scope: Scope, name: str = "", now: float = 0.0) -> None:
        """Register a key chosen elsewhere (``RTB_ADMIN_KEY``); re-adding the same key is a no-op."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        key_id = _key_id(key)
        if key_id is None:
            raise ValueError(
                f"an API key looks like {_PREFIX}<id>_<secret>; use `rtb keys create` to make one"
            )
        self.db.execute(
            "INSERT INTO api_keys (id, hash, scope, name, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, scope = excluded.scope",
            (key_id, _hash(key), scope, name, now),
        )

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        kind, _, key = authorization.partition(" ")
        if kind.lower() != "bearer" or not key.strip():
            raise Unauthorized("the Authorization header must be `Bearer <key>`")
        key = key.strip()
        key_id = _key_id(key)
        row = self.db.one("SELECT hash, scope FROM api_keys WHERE id = ?", (key_id,)) if key_id else None
        # Compare even when the id is unknown, so a miss and a near-miss take the same time.
        stored = row["hash"] if row else "0" * 64
        if not hmac.compare_digest(stored, _hash(key)) or row is None:
            raise Unauthorized("unknown or revoked API key")
        return Principal(key_id or "", row["scope"])

    def list(self) -> list[dict[str, object]]:
        rows = self.db.query("SELECT id, scope, name, created_at FROM api_keys ORDER BY created_at, id")
        return [dict(r) for r in rows]
