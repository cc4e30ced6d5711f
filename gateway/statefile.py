"""Per-crate state that survives a restart: sequence accounting (open gaps) and alarm trackers.

Saved in SQLite after each InfluxDB write and before the MQTT acknowledgements,
so after a crash the broker redelivers exactly the messages the saved state has
not seen: nothing is counted twice and no gap is forgotten or invented.
Only the crates a batch touched are written; crates the gateway forgot (silent
for ``[state] forget_after``, no open alarm) are deleted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["StateFile"]


class StateFile:
    """A small SQLite table: crate -> JSON snapshot."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()  # the writer saves, the clock forgets: one transaction at a time
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a committed transaction survives a killed process; only a power cut may lose the last ones,
        # which the broker then redelivers (points are idempotent)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS crate (id TEXT PRIMARY KEY, state TEXT NOT NULL)")

    def load(self) -> dict[str, dict[str, Any]]:
        """Every saved crate's snapshot."""
        return {crate: json.loads(state) for crate, state in self._db.execute("SELECT id, state FROM crate")}

    def save(self, snapshots: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Replace the snapshots of the given crates in one transaction."""
        rows = [(crate, json.dumps(snapshot, separators=(",", ":"))) for crate, snapshot in snapshots]
        if rows:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO crate (id, state) VALUES (?, ?)", rows)
                self._db.execute("COMMIT")

    def forget(self, crates: Iterable[str]) -> None:
        """Delete the snapshots of ``crates`` in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM crate WHERE id = ?", [(crate,) for crate in crates])
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        self._db.close()
