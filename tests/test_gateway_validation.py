"""The gateway's pure parts: any input is handled without crashing, sequence accounting, line protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_helpers import PROFILES, TS, telemetry
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.record.lineprotocol import point, series_key
from gateway.config import GatewayConfig, load_config
from gateway.ingest import Batch, Ingest
from gateway.sequence import DUPLICATE, LATE, NEW, RESTART, SeqTracker

TOPIC = "coldchain/v1/crates/C-1/telemetry"
NOW = TS + 10_000_000


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    """A minimal gateway config (cryo by default)."""
    path = tmp_path_factory.mktemp("cfg") / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n')
    return load_config(path)


def _valid_after(ingest: Ingest, batch: Batch, seq: int) -> bool:
    before = len(batch.lines)
    ingest.handle((TOPIC, telemetry("C-1", seq, ts=TS), 1, 0), batch, NOW)
    return any(line.startswith("temperature,crate=C-1,") for line in batch.lines[before:])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_and_valid_messages_behind_are_stored(
    config: GatewayConfig, payload: bytes
) -> None:
    """Random bytes are rejected (or, by chance, accepted) without an exception; the next valid message is stored."""
    ingest, batch = Ingest(config), Batch()
    ingest.handle((TOPIC, payload, 7, 0), batch, NOW)
    assert len(batch.deliveries) == 1
    assert _valid_after(ingest, batch, 10**9)


@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["v", "crate", "seq", "ts", "readings", "profile", "x"]), json_values))
def test_arbitrary_json_objects_never_crash(config: GatewayConfig, body: dict[str, object]) -> None:
    """Telemetry-shaped JSON with arbitrary values is rejected with a reason or stored; nothing raises."""
    ingest, batch = Ingest(config), Batch()
    ingest.handle((TOPIC, json.dumps(body).encode(), 7, 0), batch, NOW)
    stored = any(line.startswith("temperature,") for line in batch.lines)
    assert stored or sum(ingest.rejects.values()) == 1
    assert _valid_after(ingest, batch, 10**9)


@settings(max_examples=100, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=-200, max_value=80),
    sensor=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_every_plausible_value_is_stored_exactly(config: GatewayConfig, value: float, sensor: str) -> None:
    """Any finite value in range travels into line protocol unchanged (repr round-trips the float)."""
    body = {"v": 1, "crate": "C-1", "seq": 1, "ts": TS, "readings": [{"sensor": sensor, "value_c": value}]}
    ingest, batch = Ingest(config), Batch()
    ingest.handle((TOPIC, json.dumps(body).encode(), 1, 0), batch, NOW)
    line = next(line for line in batch.lines if line.startswith("temperature,"))
    assert line == f"temperature,crate=C-1,profile=cryo,sensor={sensor} value_c={value!r},seq=1i {TS}"
    assert float(line.split("value_c=")[1].split(",")[0]) == value


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"[]", TOPIC, "schema"),
        (b'{"v":2}', TOPIC, "version"),
        (telemetry("C-2", 1), TOPIC, "crate_mismatch"),
        (telemetry("C-1", 1, value=-250.0), TOPIC, "range"),
        (telemetry("C-1", 1, ts=NOW + 3_600_000), TOPIC, "future_ts"),
        (b" " * 20_000, TOPIC, "size"),
        (json.dumps({"v": 1, "crate": "C-1", "seq": "1", "ts": TS, "readings": []}).encode(), TOPIC, "type"),
    ],
)
def test_rejects_are_counted_per_reason(config: GatewayConfig, payload: bytes, topic: str, reason: str) -> None:
    """Each kind of bad message is counted under its reason and recorded in measurement rejected."""
    ingest, batch = Ingest(config), Batch()
    published = ingest.handle((topic, payload, 1, 0), batch, NOW)
    assert dict(ingest.rejects) == {reason: 1}
    assert batch.lines[-1].startswith(f"rejected,crate=C-1,reason={reason} ")
    assert published[-1][0] == "coldchain/v1/rejected"
    assert json.loads(published[-1][1])["reason"] == reason


@pytest.mark.parametrize(
    ("seqs", "verdicts", "stored_through", "open_gaps"),
    [
        ([1, 2, 3], [NEW, NEW, NEW], 3, []),
        ([1, 2, 2], [NEW, NEW, DUPLICATE], 2, []),
        ([1, 4], [NEW, NEW], 1, [(2, 3, 2)]),
        ([1, 4, 3], [NEW, NEW, LATE], 1, [(2, 3, 1)]),
        ([1, 4, 2], [NEW, NEW, LATE], 2, [(2, 3, 1)]),
        ([1, 4, 2, 3], [NEW, NEW, LATE, LATE], 4, []),
        ([1, 4, 2, 2], [NEW, NEW, LATE, DUPLICATE], 2, [(2, 3, 1)]),
        ([5, 3], [NEW, DUPLICATE], 5, []),
        ([1, 3, 6, 2], [NEW, NEW, NEW, LATE], 3, [(4, 5, 2)]),
    ],
)
def test_sequence_accounting(seqs: list[int], verdicts: list[int], stored_through: int, open_gaps: list) -> None:
    """Duplicates, gaps and late arrivals per crate, and the stored_through they allow."""
    tracker = SeqTracker()
    assert [tracker.accept(s, TS + s)[0] for s in seqs] == verdicts
    assert tracker.stored_through == stored_through
    assert [(g.first, g.last, g.remaining) for g in tracker.gaps] == open_gaps
    restored = SeqTracker()
    restored.restore(json.loads(json.dumps(tracker.snapshot())))
    assert restored.stored_through == stored_through


def test_line_protocol_escapes_tags_and_strings() -> None:
    """Spaces, commas and equals signs in tags and quotes in strings are escaped; tags sorted, empty ones dropped."""
    assert series_key("m", {"b": "x y", "a": "1,2=3", "c": ""}) == r"m,a=1\,2\=3,b=x\ y"
    line = point("m", {"t": "v"}, {"s": 'say "hi"\\', "i": 3, "f": 1.5, "b": True}, 1000)
    assert line == r'm,t=v s="say \"hi\"\\",i=3i,f=1.5,b=true 1000'


def test_config_example_path_is_absolute_free() -> None:
    """The shipped example names no path of this machine (only deployment paths under /etc, /var, /run)."""
    text = (Path(__file__).resolve().parent.parent / "config" / "gateway.toml").read_text()
    assert "/work/" not in text
    assert "/tmp/" not in text


def test_lower_seq_with_newer_ts_restarts_the_count() -> None:
    """A crate numbering from 1 again (newer ts) is a RESTART, not a duplicate; a true duplicate repeats its ts."""
    tracker = SeqTracker()
    assert tracker.accept(1, TS)[0] == NEW
    assert tracker.accept(5, TS + 5000)[0] == NEW
    assert tracker.accept(1, TS)[0] == DUPLICATE
    assert tracker.accept(1, TS + 9000)[0] == RESTART
    abandoned = tracker.restart(1, TS + 9000)
    assert [(g.first, g.last, g.state) for g in abandoned] == [(2, 4, "abandoned")]
    assert tracker.stored_through == 1
    assert tracker.accept(2, TS + 10_000)[0] == NEW


def test_restarted_crate_is_stored_and_alarms_afresh(config: GatewayConfig) -> None:
    """After a seq restart the readings are stored again and a new excursion raises a new alarm."""
    ingest, batch = Ingest(config), Batch()
    live = NOW - 10_000  # live data: a backlog's alarms would be held back until the crate caught up
    published = []
    for seq, ts in ((1, live), (2, live + 1000), (1, live + 5000)):
        published += ingest.handle((TOPIC, telemetry("C-1", seq, value=-140.0, ts=ts), seq, 0), batch, NOW)
    assert ingest.restarts == 1
    assert sum(line.startswith("temperature,") for line in batch.lines) == 3
    critical = [t for t, _, _ in published if t == "coldchain/v1/alarms/C-1/critical_high/probe1"]
    assert len(critical) == 2
