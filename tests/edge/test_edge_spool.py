"""The SQLite spool: durable, ordered, bounded with announced drops, self-healing when corrupt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.spool import SEQ_BLOCK, Spool


def _payload(seq: int) -> bytes:
    return f'{{"seq":{seq}}}'.encode()


def test_seq_persists_across_reopen(tmp_path: Path) -> None:
    """A reopened spool continues seq where it stopped, even after everything was pruned."""
    spool = Spool(tmp_path / "s.sqlite", 100)
    for i in range(3):
        spool.append(1000 + i, _payload)
    spool.prune(2)
    spool.close()
    again = Spool(tmp_path / "s.sqlite", 100)
    assert again.append(2000, _payload)[0] == 3
    assert len(again) == 1


def test_pending_is_in_seq_order_after_a_cursor(tmp_path: Path) -> None:
    """pending() returns stored payloads above the cursor, oldest first, limited."""
    spool = Spool(tmp_path / "s.sqlite", 100)
    for i in range(5):
        spool.append(i, _payload)
    assert spool.pending(1, 2) == [(2, _payload(2)), (3, _payload(3))]


def test_prune_removes_only_acknowledged(tmp_path: Path) -> None:
    """prune(N) forgets seq <= N and keeps the rest."""
    spool = Spool(tmp_path / "s.sqlite", 100)
    for i in range(5):
        spool.append(i, _payload)
    assert spool.prune(2) == 3
    assert spool.first_seq() == 3
    assert [seq for seq, _ in spool.pending(-1, 10)] == [3, 4]


def test_full_spool_drops_oldest_batch_and_reports_it(tmp_path: Path) -> None:
    """At the bound the oldest 1 % goes, and the append says which seq and ts range was dropped."""
    spool = Spool(tmp_path / "s.sqlite", 200)
    for i in range(200):
        assert spool.append(10_000 + i, _payload)[1] is None
    seq, dropped = spool.append(99_999, _payload)
    assert seq == 200
    assert dropped is not None
    assert (dropped.first_seq, dropped.last_seq, dropped.count) == (0, 1, 2)
    assert (dropped.from_ts, dropped.to_ts) == (10_000, 10_001)
    assert len(spool) == 199
    assert spool.first_seq() == 2


def test_power_loss_settings(tmp_path: Path) -> None:
    """The spool runs in WAL mode with synchronous=FULL (2)."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_corrupt_spool_is_quarantined_and_seq_not_reused(tmp_path: Path) -> None:
    """A spool that is not a database is moved aside; the new one starts above every seq ever reserved."""
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    for i in range(3):
        spool.append(i, _payload)
    spool.close()
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if part.exists():
            part.write_bytes(b"this is not sqlite " * 300)
    fresh = Spool(path, 100)
    assert (tmp_path / "s.sqlite.corrupt-1").exists()
    assert len(fresh) == 0
    assert fresh.append(5, _payload)[0] >= SEQ_BLOCK


def test_events_leave_only_when_removed(tmp_path: Path) -> None:
    """Events are kept in order until removed (on PUBACK)."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    first = spool.add_event(b"a")
    spool.add_event(b"b")
    spool.remove_event(first)
    assert [p for _, p in spool.events(0, 10)] == [b"b"]


def test_committed_rows_survive_an_unclosed_connection(tmp_path: Path) -> None:
    """A row is durable once append returns: another connection sees it without close()."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    spool.append(1, _payload)
    other = sqlite3.connect(tmp_path / "s.sqlite")
    assert other.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0] == 1


def test_event_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    """Beyond max_events the oldest event goes, counted."""
    spool = Spool(tmp_path / "s.sqlite", 10, max_events=3)
    for name in (b"a", b"b", b"c", b"d"):
        spool.add_event(name)
    assert [p for _, p in spool.events(0, 10)] == [b"b", b"c", b"d"]
    assert spool.events_dropped == 1


def test_renumber_moves_rows_payloads_and_next_seq(tmp_path: Path) -> None:
    """renumber_from shifts every spooled seq (in the row and in its JSON) and the next seq."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    for i in range(3):
        spool.append(i, _payload)
    spool.prune(0)
    assert spool.renumber_from(100) == 99
    assert spool.pending(-1, 10) == [(100, b'{"seq":100}'), (101, b'{"seq":101}')]
    assert spool.append(5, _payload)[0] == 102


def test_append_many_is_one_ordered_batch_that_respects_the_bound(tmp_path: Path) -> None:
    """Samples that arrived together get consecutive seqs; the bound makes room for the whole batch."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    spool.append_many([(i, _payload, None) for i in range(8)])
    seqs, dropped = spool.append_many([(100 + i, _payload, None) for i in range(5)])
    assert seqs == [8, 9, 10, 11, 12]
    assert dropped is not None
    assert (dropped.first_seq, dropped.last_seq) == (0, 2)
    assert [seq for seq, _ in spool.pending(-1, 20)] == list(range(3, 13))


def test_spool_with_damaged_pages_is_quarantined(tmp_path: Path) -> None:
    """Pages overwritten as a failing SD card would: quick_check fails at open and the file is set aside."""
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 10_000)
    spool.append_many([(i, lambda seq: b"x" * 200, None) for i in range(2000)])
    spool.close()
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    for page in (3, 4, 5):
        data[page_size * (page - 1) : page_size * (page - 1) + 12] = b"\xab" * 12
    path.write_bytes(bytes(data))
    fresh = Spool(path, 10_000)
    assert (tmp_path / "s.sqlite.corrupt-1").exists()
    assert len(fresh) == 0
    assert fresh.append(1, _payload)[0] >= 2000


def test_spool_of_another_schema_version_is_set_aside(tmp_path: Path) -> None:
    """A spool written by another layout (user_version) is quarantined rather than misread."""
    path = tmp_path / "s.sqlite"
    Spool(path, 10).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    Spool(path, 10).close()
    assert (tmp_path / "s.sqlite.corrupt-1").exists()
