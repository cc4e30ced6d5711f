"""The crate's low-water mark (telemetry ``held_from``): on the wire, in the spool, and in the gateway's accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_helpers import PROFILES, TS, telemetry
from hypothesis import given
from hypothesis import strategies as st

from coldchain.errors import WireFormatError
from coldchain.signing import verify
from coldchain.wire import decode_telemetry, encode
from edge.forwarder import _with_held_from
from edge.spool import Spool
from gateway.config import load_config
from gateway.ingest import Batch, Ingest
from gateway.sequence import DUPLICATE, LATE, NEW, RESTART, SeqTracker

TOPIC = "coldchain/v1/crates/C-1/telemetry"
NOW = TS + 10_000_000


def _gaps(tracker: SeqTracker) -> list[tuple[int, int, list[list[int]]]]:
    return [(g.first, g.last, g.missing) for g in tracker.gaps]


def test_held_from_round_trips_and_is_optional() -> None:
    """The field "held_from" travels when set and decodes to the same message; without it the payload is as before."""
    message = decode_telemetry(telemetry("C-1", 17, held_from=9), topic_crate="C-1")
    assert message.held_from == 9
    assert json.loads(encode(message))["held_from"] == 9
    assert decode_telemetry(encode(message)) == message
    assert decode_telemetry(telemetry("C-1", 17, held_from=17)).held_from == 17  # holds only this one
    plain = decode_telemetry(telemetry("C-1", 17))
    assert plain.held_from is None
    assert "held_from" not in json.loads(encode(plain))


@pytest.mark.parametrize(
    ("held_from", "reason"), [("3", "type"), (3.0, "type"), (True, "type"), ([3], "type"), (-1, "range"), (18, "range")]
)
def test_bad_held_from_is_rejected(held_from: object, reason: str) -> None:
    """A held_from that is not an integer seq in 0..seq is refused, naming the field."""
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(telemetry("C-1", 17, held_from=held_from), topic_crate="C-1")
    assert caught.value.reason == reason
    assert "held_from" in caught.value.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)


@given(held_from=json_values)
def test_any_held_from_decodes_or_is_refused_with_a_reason(held_from: object) -> None:
    """Whatever JSON value held_from has, decoding gives a message or a type/range error, nothing else."""
    try:
        outcome: object = decode_telemetry(telemetry("C-1", 17, held_from=held_from)).held_from
    except WireFormatError as exc:
        outcome = exc.reason
    assert outcome == held_from or outcome in {"type", "range"}


def test_the_agent_stamps_its_low_water_mark_as_a_message_leaves(tmp_path: Path) -> None:
    """The spool's low-water mark follows appends, prunes and the bound; the stamped payload is valid, signable JSON."""
    spool = Spool(tmp_path / "spool.sqlite", max_rows=100)
    assert spool.low_water == 0  # nothing taken yet: the next seq
    spool.append_many([(TS + i, lambda seq: telemetry("C-1", seq), None) for i in range(5)])
    assert spool.low_water == 0
    spool.prune(2)
    assert spool.low_water == 3
    spool.prune(4)
    assert (spool.low_water, spool.first_seq()) == (5, None)
    spool.append_many([(TS + i, lambda seq: telemetry("C-1", seq), None) for i in range(100)])
    _, dropped = spool.append(TS, lambda seq: telemetry("C-1", seq))  # full: the oldest 1 % goes
    assert dropped is not None
    assert spool.low_water == dropped.last_seq + 1
    spool.close()
    assert Spool(tmp_path / "spool.sqlite", max_rows=100).low_water == dropped.last_seq + 1
    compact = encode(decode_telemetry(telemetry("C-1", 7)))
    stamped = _with_held_from(compact, 3)
    assert decode_telemetry(stamped) == decode_telemetry(telemetry("C-1", 7, held_from=3))
    body = json.loads(stamped)
    body["sig"] = "x"
    assert not verify(body, b"k")  # covered by the signature made after it (a forged mark does not verify)


def test_a_crate_met_without_state_is_waited_for_from_its_held_from() -> None:
    """First sight of seq 24 with held_from 0: gap 0..23 opens and stored_through stays below it until they come."""
    tracker = SeqTracker()
    verdict, gap = tracker.accept(24, TS + 24, held_from=0)
    assert verdict == NEW
    assert gap is not None
    assert gap.assumed
    assert (tracker.stored_through, _gaps(tracker)) == (-1, [(0, 23, [[0, 23]])])
    for seq in range(24):
        assert tracker.accept(seq, TS + seq, held_from=0)[0] == LATE
    assert (tracker.stored_through, tracker.gaps, gap.state) == (24, [], "closed")


def test_without_held_from_or_with_nothing_held_the_first_seq_is_the_start() -> None:
    """An older agent (no field), or one holding nothing below its message, starts the count at the seq seen."""
    for held_from in (None, 24):
        tracker = SeqTracker()
        assert tracker.accept(24, TS, held_from=held_from) == (NEW, None)
        assert tracker.stored_through == 24


def test_held_from_of_a_known_crate_behind_its_acks_changes_nothing() -> None:
    """A crate that has not heard the latest ack yet sends a lower held_from: no gap, no new waiting."""
    tracker = SeqTracker()
    for seq in range(10):
        tracker.accept(seq, TS + seq, held_from=0)
    assert tracker.accept(10, TS + 10, held_from=2) == (NEW, None)
    assert tracker.settle(2) is None
    assert (tracker.stored_through, tracker.gaps) == (10, [])


def test_a_higher_held_from_shrinks_only_the_assumed_gap() -> None:
    """Seqs below a later, higher held_from were settled before the gateway met the crate: the assumed gap stops
    waiting for them (closed once nothing is awaited); a gap of seqs seen skipped stays for the crate's gap event."""
    tracker = SeqTracker()
    tracker.accept(20, TS + 20, held_from=10)  # held_from stamped before the crate heard a lost state's last ack
    tracker.accept(11, TS + 11, held_from=10)
    tracker.accept(25, TS + 25, held_from=10)  # 21..24 seen skipped
    changed = tracker.settle(15)
    assert changed is not None
    assert changed.missing == [[15, 19]]
    assert tracker.stored_through == 14
    for seq in range(15, 20):
        tracker.accept(seq, TS + seq, held_from=15)
    assert (changed.state, tracker.stored_through) == ("closed", 20)
    assert tracker.settle(30) is None  # 21..24: not assumed
    assert _gaps(tracker) == [(21, 24, [[21, 24]])]


def test_an_assumed_gap_the_crate_no_longer_holds_at_all_is_written_closed() -> None:
    """held_from past the whole assumed gap: nothing is awaited from it any more and the ack moves on."""
    tracker = SeqTracker()
    tracker.accept(20, TS + 20, held_from=10)
    gap = tracker.settle(21)
    assert gap is not None
    assert (gap.first, gap.last, gap.remaining, gap.state) == (10, 19, 0, "closed")
    assert (tracker.stored_through, tracker.gaps) == (20, [])


def test_a_crate_numbering_afresh_is_met_like_a_new_one() -> None:
    """RESTART with held_from: the old gaps are abandoned and what the crate holds below its new seq is awaited."""
    tracker = SeqTracker()
    tracker.accept(50, TS, held_from=50)
    tracker.accept(53, TS + 3)
    assert tracker.accept(7, TS + 9000, held_from=2)[0] == RESTART
    written = tracker.restart(7, TS + 9000, held_from=2)
    assert [(g.first, g.last, g.state, g.assumed) for g in written] == [
        (51, 52, "abandoned", False),
        (2, 6, "open", True),
    ]
    assert tracker.stored_through == 1
    assert tracker.accept(2, TS + 8000)[0] == LATE
    assert tracker.accept(2, TS + 8000)[0] == DUPLICATE


def test_the_assumed_mark_survives_the_state_file() -> None:
    """A restored tracker still knows which gap a higher held_from may shrink."""
    tracker = SeqTracker()
    tracker.accept(20, TS + 20, held_from=10)
    restored = SeqTracker()
    restored.restore(json.loads(json.dumps(tracker.snapshot())))
    assert restored.gaps[0].assumed
    assert restored.settle(21) is not None
    assert restored.stored_through == 20


def test_ingest_writes_the_assumed_gap_and_its_settling(tmp_path: Path) -> None:
    """Through Ingest: the gap point opened from held_from, then rewritten closed when a resend's held_from passes it;
    a rejected first message opens it too (a refused seq counts as handled, not what came before it)."""
    path = tmp_path / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n')
    ingest, batch = Ingest(load_config(path)), Batch()
    ingest.handle((TOPIC, telemetry("C-1", 20, held_from=10), 1, 0), batch, NOW)
    ingest.handle((TOPIC, telemetry("C-1", 20, held_from=20), 2, 0), batch, NOW)  # a resend, after a later ack
    gaps = [line for line in batch.lines if line.startswith("gap,")]
    assert [g.split(" ")[1] for g in gaps] == [
        'first_missing=10i,last_missing=19i,missing=10i,state="open"',
        'first_missing=10i,last_missing=19i,missing=0i,state="closed"',
    ]
    ingest.close(batch, with_snapshots=False)
    assert batch.through == {"C-1": 20}
    rejected = Batch()
    ingest.handle(
        ("coldchain/v1/crates/C-2/telemetry", telemetry("C-2", 20, value=999.0, held_from=10), 3, 0), rejected, NOW
    )
    ingest.close(rejected, with_snapshots=False)
    assert rejected.through == {"C-2": 9}
