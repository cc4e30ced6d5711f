"""A durable per-channel outbox (SQLite, WAL): each notification is delivered once, across restarts and outages.

A notification is added under its idempotency key (alarm id + change), so adding
it again (a replay after a restart) is a no-op. It is marked delivered only after
the receiver confirmed it; until then it survives any crash and is retried, in the
order added, so a receiver never hears ``cleared`` before ``active``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Outbox", "OutboxItem"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    added_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL,
    last_error TEXT,
    delivered_ms INTEGER,
    failed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE delivered_ms IS NULL AND failed_ms IS NULL;
"""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification waiting for (or past) delivery."""

    key: str
    body: dict[str, Any]
    attempts: int
    next_ms: int
    last_error: str | None


class Outbox:
    """The notifications of one channel, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # one connection shared by the enqueuing and the delivering thread, serialised by the lock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an accepted notification must survive a power cut
        self._db.executescript(_SCHEMA)

    def add(self, key: str, body: dict[str, Any], now_ms: int) -> bool:
        """Queue ``body`` under ``key``; False when that key was queued before (delivered or not)."""
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, body, added_ms, next_ms) VALUES (?, ?, ?, ?)",
                (key, text, now_ms, now_ms),
            )
            return cursor.rowcount == 1

    def head(self) -> OutboxItem | None:
        """The oldest notification not yet delivered nor given up, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, body, attempts, next_ms, last_error FROM outbox"
                " WHERE delivered_ms IS NULL AND failed_ms IS NULL ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return OutboxItem(row[0], json.loads(row[1]), row[2], row[3], row[4])

    def delivered(self, key: str, now_ms: int) -> None:
        """The receiver confirmed ``key``: never send it again."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET delivered_ms = ?, attempts = attempts + 1, last_error = NULL WHERE key = ?",
                (now_ms, key),
            )

    def retry_later(self, key: str, error: str, next_ms: int) -> None:
        """Delivery of ``key`` failed for now: try again at ``next_ms``."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ms = ?, last_error = ? WHERE key = ?",
                (next_ms, error[:500], key),
            )

    def give_up(self, key: str, error: str, now_ms: int) -> None:
        """The receiver refused ``key`` for good: keep it, marked failed, for people to see."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, failed_ms = ?, last_error = ? WHERE key = ?",
                (now_ms, error[:500], key),
            )

    def counts(self) -> dict[str, int]:
        """How many notifications are pending, delivered and failed."""
        with self._lock:
            pending, delivered, failed = self._db.execute(
                "SELECT COUNT(*) - COUNT(delivered_ms) - COUNT(failed_ms), COUNT(delivered_ms), COUNT(failed_ms)"
                " FROM outbox"
            ).fetchone()
        return {"pending": pending, "delivered": delivered, "failed": failed}

    def prune(self, delivered_before_ms: int) -> int:
        """Forget delivered notifications older than ``delivered_before_ms``; returns how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE delivered_ms IS NOT NULL AND delivered_ms < ?", (delivered_before_ms,)
            )
            return cursor.rowcount

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
