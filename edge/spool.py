"""Store-and-forward spool: every message is in SQLite before it is published.

A telemetry row leaves the spool only when the gateway says it is stored
(``stored_through``), never on the broker's PUBACK: Mosquitto acknowledges before
it writes to disk and drops queued messages when a client's queue is full, and
paho's outgoing queue lives in RAM. Events (lid, gap, excursion) carry no seq the
gateway could acknowledge, so they leave on PUBACK.

Durability choices, for a Pi that loses power without warning:
- WAL journal + ``synchronous=FULL``: every commit is fsynced into the WAL before
  it returns, so a reading we accepted survives power loss; WAL also lets a
  commit be one sequential append instead of rewriting pages in place.
  (``NORMAL`` in WAL mode may lose the last commits on power loss.)
- ``PRAGMA quick_check`` at open: an SD card can corrupt pages. A spool that
  fails it is renamed aside (``*.corrupt-<n>``, kept for forensics) and a fresh
  one is started, rather than crashing every boot or silently reading garbage.
- ``seq`` must never repeat for a crate (the gateway de-duplicates by it), even
  when a corrupt spool is thrown away, so seq numbers are reserved in blocks in
  a small side file (``<spool>.seq``), written atomically before a block is used.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coldchain.wire import amended

__all__ = ["Dropped", "Spool", "Stamp"]

log = logging.getLogger(__name__)

SEQ_BLOCK: Final = 10_000
SCHEMA_VERSION: Final = 1  # PRAGMA user_version; a spool of another layout is set aside, never misread

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS telemetry (
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, payload BLOB NOT NULL,
    held INTEGER NOT NULL DEFAULT 0, mono_ms INTEGER, boot TEXT
);
-- publishing stops before the first held row: keep finding it cheap with a big backlog
CREATE INDEX IF NOT EXISTS telemetry_held ON telemetry (seq) WHERE held = 1;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL,
    held INTEGER NOT NULL DEFAULT 0, mono_ms INTEGER, boot TEXT
);
CREATE INDEX IF NOT EXISTS events_held ON events (id) WHERE held = 1;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Stamp:
    """Monotonic milliseconds of a sample and the boot they count from (/proc's boot_id)."""

    mono_ms: int
    boot: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Telemetry rows the bound forced out of the spool (oldest first)."""

    first_seq: int
    last_seq: int
    count: int
    from_ts: int
    to_ts: int


class Spool:
    """The agent's durable store of messages until the gateway stored them. Used from one thread only."""

    def __init__(self, path: Path, max_rows: int, max_events: int = 10_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_events = max_events
        self.events_dropped = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open_checked()
        self._reserved = self._read_reservation()
        stored = self._meta("next_seq")
        if stored is None and self._reserved > 0:
            # a new spool beside an old reservation: the old spool was quarantined or deleted
            log.warning("spool %s is new; seq continues at %d, above every seq reserved before", path, self._reserved)
        self._next_seq = stored if stored is not None else self._reserved
        self._rows = int(self._db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0])
        # the lowest spooled seq, kept up to date here: every published message carries it (``low_water``)
        self._first = self._min_seq()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _open_checked(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            empty = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
            if verdict == "ok" and (version == SCHEMA_VERSION or empty):
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return db
            db.close()
            problem = (
                str(verdict) if verdict != "ok" else f"schema version {version}, this agent writes {SCHEMA_VERSION}"
            )
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        aside = self._quarantine()
        log.error("spool %s cannot be used (%s); moved it to %s and started a new one", self.path, problem, aside)
        db = self._connect()
        db.executescript(_SCHEMA)
        return db

    def _quarantine(self) -> Path:
        n = 1
        while (aside := self.path.with_name(f"{self.path.name}.corrupt-{n}")).exists():
            n += 1
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        return aside

    @property
    def _seq_file(self) -> Path:
        return self.path.with_name(self.path.name + ".seq")

    def _read_reservation(self) -> int:
        try:
            return int(self._seq_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def _reserve(self, through: int) -> None:
        tmp = self._seq_file.with_name(self._seq_file.name + ".tmp")
        with tmp.open("w") as f:
            f.write(f"{through}\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self._seq_file)
        self._reserved = through

    def _meta(self, key: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    @property
    def next_seq(self) -> int:
        """The seq the next telemetry message will get."""
        return self._next_seq

    def __len__(self) -> int:
        return self._rows

    def append(self, ts: int, make: Callable[[int], bytes], held: Stamp | None = None) -> tuple[int, Dropped | None]:
        """Store the message ``make(seq)`` under the next seq; return the seq and what the bound dropped.

        ``held``: the wall clock was unset; keep the row unpublished, with the monotonic
        time to correct its ``ts`` from once the clock is set (see ``held_rows``).
        """
        seqs, dropped = self.append_many([(ts, make, held)])
        return seqs[0], dropped

    def append_many(
        self, items: list[tuple[int, Callable[[int], bytes], Stamp | None]]
    ) -> tuple[list[int], Dropped | None]:
        """``append`` for several samples in one transaction: one fsync however many arrived together."""
        needed = len(items)
        dropped = self._make_room(needed) if self._rows + needed > self.max_rows else None
        first = self._next_seq
        if first + needed > self._reserved:
            self._reserve(first + needed + SEQ_BLOCK)
        rows = [
            (first + i, ts, make(first + i), held is not None, held and held.mono_ms, held and held.boot)
            for i, (ts, make, held) in enumerate(items)
        ]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO telemetry (seq, ts, payload, held, mono_ms, boot) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (first + needed,))
        self._next_seq = first + needed
        self._rows += needed
        if self._first is None:
            self._first = first
        return list(range(first, first + needed)), dropped

    def _make_room(self, needed: int) -> Dropped:
        # Policy: drop the oldest 1 % (at least what is needed). The newest readings show the
        # crate's present state, which matters most to whoever receives them; dropping
        # a batch keeps the announcements (gap events) to one per 1 % instead of one per reading.
        batch = max(1, self.max_rows // 100, self._rows + needed - self.max_rows)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            first, last, count, from_ts, to_ts = self._db.execute(
                "SELECT MIN(seq), MAX(seq), COUNT(*), MIN(ts), MAX(ts) FROM "
                "(SELECT seq, ts FROM telemetry ORDER BY seq LIMIT ?)",
                (batch,),
            ).fetchone()
            self._db.execute("DELETE FROM telemetry WHERE seq <= ?", (last,))
        self._rows -= count
        self._first = self._min_seq()
        return Dropped(first, last, count, from_ts, to_ts)

    def pending(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` stored messages with seq > ``after_seq``, in seq order, stopping before a held one."""
        rows = self._db.execute(
            "SELECT seq, payload FROM telemetry WHERE seq > ? "
            "AND seq < COALESCE((SELECT MIN(seq) FROM telemetry WHERE held = 1), 9223372036854775807) "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def held_rows(self) -> list[tuple[int, int, Stamp, bytes]]:
        """Rows held for an unset clock: (seq, recorded ts, monotonic stamp, payload), in seq order."""
        rows = self._db.execute(
            "SELECT seq, ts, mono_ms, boot, payload FROM telemetry WHERE held = 1 ORDER BY seq"
        ).fetchall()
        return [(int(seq), int(ts), Stamp(int(mono), str(boot)), bytes(p)) for seq, ts, mono, boot, p in rows]

    def release(self, corrected: list[tuple[int, int, bytes]]) -> None:
        """Give held rows their corrected (seq, ts, payload) and let them be published, in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE telemetry SET ts = ?, payload = ?, held = 0 WHERE seq = ?",
                [(ts, payload, seq) for seq, ts, payload in corrected],
            )

    def payload(self, seq: int) -> bytes | None:
        """The stored message of ``seq`` (None when it is not in the spool)."""
        row = self._db.execute("SELECT payload FROM telemetry WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def replace_payloads(self, rows: list[tuple[int, bytes]]) -> None:
        """Give stored messages (seq, payload) new payloads, in one transaction; held rows stay held."""
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE telemetry SET payload = ? WHERE seq = ?", [(p, seq) for seq, p in rows])

    def renumber_from(self, start: int) -> int:
        """Move every spooled message (and the next seq) up so the oldest gets ``start``; return the shift.

        For a crate whose seq went back to 0 (spool and reservation lost, SD card replaced)
        while the gateway already holds higher seqs: unrenumbered, its readings would be
        discarded as duplicates.
        """
        first = self.first_seq()
        shift = start - (first if first is not None else self._next_seq)
        if shift <= 0:
            return 0
        rows = self._db.execute("SELECT seq, payload FROM telemetry ORDER BY seq DESC").fetchall()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for seq, payload in rows:  # highest first, so no new seq collides with an old one
                encoded = amended(payload, {"seq": seq + shift})
                self._db.execute("UPDATE telemetry SET seq = ?, payload = ? WHERE seq = ?", (seq + shift, encoded, seq))
            self._next_seq += shift
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (self._next_seq,))
        self._reserve(self._next_seq + SEQ_BLOCK)
        self._first = self._min_seq()
        return shift

    def _min_seq(self) -> int | None:
        row = self._db.execute("SELECT MIN(seq) FROM telemetry").fetchone()
        return None if row[0] is None else int(row[0])

    def first_seq(self) -> int | None:
        """The lowest seq still spooled (not yet acknowledged by the gateway)."""
        return self._first

    @property
    def low_water(self) -> int:
        """The lowest seq not confirmed stored: the first spooled, else the next to be taken.

        Every seq below it was pruned on a storage ack or dropped by the bound (announced in a gap event).
        """
        return self._next_seq if self._first is None else self._first

    def prune(self, stored_through: int) -> int:
        """Forget telemetry up to and including ``stored_through``; return how many rows went."""
        with self._db:
            removed = self._db.execute("DELETE FROM telemetry WHERE seq <= ?", (stored_through,)).rowcount
        self._rows -= removed
        if removed:
            self._first = self._min_seq()
        return int(removed)

    def add_event(self, payload: bytes, held: Stamp | None = None) -> int:
        """Store an event message; return its id. Beyond ``max_events`` the oldest event is dropped (logged).

        ``held``: stamped by an unset clock; kept back like a held telemetry row.
        """
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO events (payload, held, mono_ms, boot) VALUES (?, ?, ?, ?)",
                (payload, held is not None, held and held.mono_ms, held and held.boot),
            )
            dropped = self._db.execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (self.max_events,)
            ).rowcount
        if dropped:
            # a bouncing lid switch must not crowd readings out of the disk; the readings have their own bound
            self.events_dropped += dropped
            log.error(
                "event spool full (%d): dropped the oldest event (%d so far)", self.max_events, self.events_dropped
            )
        return int(cursor.lastrowid or 0)

    def events(self, after_id: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` stored events with id > ``after_id``, oldest first, stopping before a held one."""
        rows = self._db.execute(
            "SELECT id, payload FROM events WHERE id > ? "
            "AND id < COALESCE((SELECT MIN(id) FROM events WHERE held = 1), 9223372036854775807) "
            "ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [(int(i), bytes(p)) for i, p in rows]

    def held_events(self) -> list[tuple[int, Stamp, bytes]]:
        """Events held for an unset clock: (id, monotonic stamp, payload), oldest first."""
        rows = self._db.execute("SELECT id, mono_ms, boot, payload FROM events WHERE held = 1 ORDER BY id").fetchall()
        return [(int(i), Stamp(int(mono), str(boot)), bytes(p)) for i, mono, boot, p in rows]

    def release_events(self, corrected: list[tuple[int, bytes]]) -> None:
        """Give held events their corrected payloads and let them be published."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE events SET payload = ?, held = 0 WHERE id = ?", [(payload, i) for i, payload in corrected]
            )

    def remove_event(self, event_id: int) -> None:
        """Forget an event the broker has accepted."""
        with self._db:
            self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))

    def close(self) -> None:
        """Checkpoint and close the database."""
        self._db.close()
