"""SQLite store of the control plane, in WAL mode, one file in the data directory.

Every write is its own committed transaction (or one ``with db.tx():`` block), with
``synchronous=FULL``, so a SIGTERM or a crash loses nothing that was answered 2xx. The schema is
versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes the file from version i to i+1.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL);
    CREATE TABLE campaigns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL, plan TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE INDEX campaigns_status ON campaigns (status, seq);
    -- Bidder events keep the bidder's own sequence number, so a re-pull after a crash is a no-op.
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, campaign_id TEXT NOT NULL,
        bid_id TEXT NOT NULL, imp_id TEXT NOT NULL, creative_id TEXT NOT NULL, price REAL NOT NULL,
        user_id TEXT NOT NULL DEFAULT '', data TEXT NOT NULL);
    CREATE INDEX events_campaign ON events (campaign_id, ts);
    CREATE TABLE conversions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, campaign_id TEXT NOT NULL,
        ad_set_id TEXT NOT NULL, creative_id TEXT NOT NULL, user_id TEXT NOT NULL,
        request_id TEXT NOT NULL, value REAL NOT NULL, kind TEXT NOT NULL);
    CREATE INDEX conversions_campaign ON conversions (campaign_id, ts);
    -- Bids per bidder campaign and day, from deltas of the bidder's cumulative /status counters.
    CREATE TABLE bid_counts (
        campaign_id TEXT NOT NULL, day TEXT NOT NULL, bids INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, day));
    CREATE TABLE bid_results (
        request_id TEXT PRIMARY KEY, status TEXT NOT NULL, win_price REAL NOT NULL,
        campaign_id TEXT NOT NULL, ts REAL NOT NULL);
    CREATE TABLE idempotency (
        key_id TEXT NOT NULL, idem_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL, body BLOB NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (key_id, idem_key));
    -- A/B tests, rules, webhooks: documents whose shape belongs to the module that reads them.
    CREATE TABLE docs (
        kind TEXT NOT NULL, id TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (kind, id));
    CREATE TABLE log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref TEXT NOT NULL,
        ts REAL NOT NULL, body TEXT NOT NULL);
    CREATE INDEX log_kind_ref ON log (kind, ref, id);
    """,
]


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the event loop and the server thread; the lock serialises them.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._migrate()

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> Database:
        return cls(Path(data_dir) / "control.sqlite3")

    def _migrate(self) -> None:
        with self.tx():
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path}: schema version {version} is newer than this program knows "
                    f"({len(MIGRATIONS)}); upgrade rtb"
                )
            for i in range(version, len(MIGRATIONS)):
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        self._conn.execute(stmt)
                self._conn.execute(f"PRAGMA user_version = {i + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.one("PRAGMA user_version")[0])  # type: ignore[index]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """All-or-nothing block; nested blocks join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            cur = self._conn.execute(sql, params)
            return cur.rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            cur = self._conn.execute(sql, params)
            return int(cur.lastrowid or 0)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        with self._lock:
            return self._conn.executemany(sql, rows).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    # -- small typed helpers -------------------------------------------------------------------

    def get_meta(self, key: str, default: str = "") -> str:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bump_version(self) -> int:
        """The bidder snapshot's version: persisted, so it keeps increasing across restarts."""
        with self.tx():
            version = int(self.get_meta("campaigns_version", "0")) + 1
            self.set_meta("campaigns_version", str(version))
            return version

    def put_doc(self, kind: str, id: str, created_at: float, body: Any) -> None:
        self.execute(
            "INSERT INTO docs (kind, id, created_at, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
            (kind, id, created_at, msgspec.json.encode(body).decode()),
        )

    def get_doc(self, kind: str, id: str) -> bytes | None:
        row = self.one("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, id))
        return row["body"].encode() if row else None

    def list_docs(self, kind: str) -> list[bytes]:
        rows = self.query("SELECT body FROM docs WHERE kind = ? ORDER BY created_at, id", (kind,))
        return [r["body"].encode() for r in rows]

    def append_log(self, kind: str, ref: str, ts: float, body: Any) -> int:
        return self.insert(
            "INSERT INTO log (kind, ref, ts, body) VALUES (?, ?, ?, ?)",
            (kind, ref, ts, msgspec.json.encode(body).decode()),
        )

    def read_log(self, kind: str, ref: str | None = None, limit: int = 1000) -> list[bytes]:
        if ref is None:
            rows = self.query("SELECT body FROM log WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))
        else:
            rows = self.query(
                "SELECT body FROM log WHERE kind = ? AND ref = ? ORDER BY id DESC LIMIT ?", (kind, ref, limit)
            )
        return [r["body"].encode() for r in rows]
