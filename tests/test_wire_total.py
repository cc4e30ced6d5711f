"""Every decoder of what crates and people send the gateway is total: a value or the contract's error, for any input.

Structure-aware: a valid message with one field (top level or inside a reading) replaced by an arbitrary
JSON value, including huge integers, NaN and infinities, deep nesting and lone surrogates; and arbitrary
bytes. The gateway's own routing of status, events and staff acks is held to the same standard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import PROFILES, TS, telemetry
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.errors import WireFormatError
from coldchain.record.lineprotocol import encode_lines
from coldchain.wire import (
    Reading,
    StaffAck,
    StorageAck,
    Telemetry,
    decode_staff_ack,
    decode_storage_ack,
    decode_telemetry,
    describe,
    encode,
    salvage_telemetry,
)
from gateway.config import GatewayConfig, load_config
from gateway.ingest import Batch, Ingest

NOW = TS + 10_000_000
# the reasons docs/gateway.md documents for the gateway's rejects
DOCUMENTED = {
    "size", "encoding", "json", "schema", "version", "type", "crate", "crate_mismatch", "range", "future_ts",
    "store_refused", "signature", "unknown_crate", "ack_rejected", "topic_mismatch", "topic", "reserved_crate",
    "internal",
}  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)  # beyond a float, within json's digit limit
    | st.floats()  # NaN and the infinities too: json.dumps writes them as its NaN/Infinity tokens
    | st.text(max_size=30)
    | st.sampled_from(["OPEN", "\ud800", "C-1", "probe1", "a\nb", 'a"b,c=d e'])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


hostile_values = json_values | st.integers(min_value=1, max_value=990).map(_nested)


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()  # NaN/Infinity tokens allowed: crates may send them


def _valid_telemetry() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(telemetry("C-1", 7))
    body["readings"].append({"sensor": "probe2", "value_c": None, "fault": "OPEN"})
    return body


def _outcome(decode: Any, payload: bytes) -> Any:
    """What ``decode`` made of ``payload``: its value, or the WireFormatError it raised (any other escapes)."""
    try:
        return decode(payload)
    except WireFormatError as exc:
        return exc


def _check(decode: Any, payload: bytes) -> None:
    outcome = _outcome(decode, payload)
    if isinstance(outcome, WireFormatError):
        assert outcome.reason in DOCUMENTED, outcome.reason
        assert len(outcome.detail) < 2_000
        outcome.detail.encode()  # always text that can be logged, stored and sent


TELEMETRY_KEYS = [
    "v",
    "crate",
    "seq",
    "ts",
    "readings",
    "profile",
    "powered_on",
    "ts_corrected",
    "ts_uncertain",
    "extra",
]
READING_KEYS = ["sensor", "value_c", "fault", "extra"]


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(TELEMETRY_KEYS), value=hostile_values)
def test_telemetry_with_any_value_in_any_field_decodes_or_is_refused(key: str, value: Any) -> None:
    """Telemetry with one top-level field replaced by any JSON value: a Telemetry or a WireFormatError."""
    body = _valid_telemetry()
    body[key] = value
    _check(lambda p: decode_telemetry(p, "C-1", NOW), _dumps(body))


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["ts_corrected", "ts_uncertain"]), value=hostile_values, other=st.sampled_from([None, True]))
def test_a_time_flag_of_any_value_is_a_boolean_or_refused_as_type(key: str, value: Any, other: Any) -> None:
    """A time flag set to any JSON value: the flag it means (true), none (false, null), or reason ``type``."""
    body = _valid_telemetry()
    body[key] = value
    if other is not None:
        body[next(k for k in ("ts_corrected", "ts_uncertain") if k != key)] = other
    outcome = _outcome(lambda p: decode_telemetry(p, "C-1", NOW), _dumps(body))
    if not (value is None or isinstance(value, bool)):
        assert isinstance(outcome, WireFormatError)
        assert outcome.reason == "type"
        return
    flags = {k for k in ("ts_corrected", "ts_uncertain") if body.get(k) is True}
    assert outcome.ts_flag == ("ts_uncertain" if "ts_uncertain" in flags else next(iter(flags), None))
    assert decode_telemetry(encode(outcome), "C-1", NOW) == outcome  # what the gateway carries encodes back


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, 1), key=st.sampled_from(READING_KEYS), value=hostile_values)
def test_telemetry_with_any_value_in_a_reading_decodes_or_is_refused(index: int, key: str, value: Any) -> None:
    """A reading's field replaced by any JSON value (a fault that is an object, an integer beyond a float): refused."""
    body = _valid_telemetry()
    body["readings"][index][key] = value
    _check(lambda p: decode_telemetry(p, "C-1", NOW), _dumps(body))


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        ({"sensor": "probe1", "value_c": None, "fault": {"OPEN": 1}}, "schema"),
        ({"sensor": "probe1", "value_c": None, "fault": ["OPEN"]}, "schema"),
        ({"sensor": "probe1", "value_c": 10**400}, "range"),
        ({"sensor": "probe1", "value_c": -(10**309)}, "range"),
        ({"sensor": "probe1", "value_c": float("nan")}, "range"),
        ({"sensor": "probe1", "value_c": -170.0, "fault": {"a": [1]}}, "schema"),
    ],
)
def test_the_readings_that_stopped_the_gateway_are_refused_with_a_reason(reading: dict[str, Any], reason: str) -> None:
    """The issue's payloads (fault an object, value_c an integer too large for a float) get the contract's error."""
    body = _valid_telemetry()
    body["readings"] = [reading]
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(_dumps(body), "C-1", NOW)
    assert caught.value.reason == reason


def test_valid_messages_still_decode() -> None:
    """The hardened decoders keep accepting what the contract allows."""
    assert decode_telemetry(_dumps(_valid_telemetry()), "C-1", NOW) == Telemetry(
        "C-1", 7, TS + 7000, (Reading("probe1", -170.0), Reading("probe2", None, "OPEN"))
    )
    body = _valid_telemetry()
    body["readings"] = [{"sensor": "probe1", "value_c": -170}]  # an integer is a number too
    assert decode_telemetry(_dumps(body)).readings == (Reading("probe1", -170.0),)
    ack = {"v": 1, "crate": "C-1", "rule": "critical_high", "sensor": "probe1", "by": "alice", "note": "re-iced\n"}
    ack["ts"] = 5
    assert decode_staff_ack(_dumps(ack)) == StaffAck("C-1", "critical_high", "probe1", "alice", "re-iced\n", 5)
    assert decode_storage_ack(b'{"v":1,"crate":"C-1","stored_through":12}') == StorageAck("C-1", 12)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["v", "crate", "stored_through", "extra"]), value=hostile_values)
def test_storage_ack_with_any_value_decodes_or_is_refused(key: str, value: Any) -> None:
    """A storage ack with any field replaced: a StorageAck whose stored_through fits a seq, or a WireFormatError."""
    body: dict[str, Any] = {"v": 1, "crate": "C-1", "stored_through": 5, key: value}
    ack = _outcome(lambda p: decode_storage_ack(p, "C-1"), _dumps(body))
    if isinstance(ack, WireFormatError):
        assert ack.reason in DOCUMENTED
    else:
        assert -1 <= ack.stored_through < 2**63  # the agent compares it with seqs in SQLite


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["v", "crate", "rule", "sensor", "by", "note", "ts", "extra"]), value=hostile_values)
def test_staff_ack_with_any_value_decodes_or_is_refused(key: str, value: Any) -> None:
    """A staff ack with any field replaced: a StaffAck whose text can be stored, or a WireFormatError."""
    body = {"v": 1, "crate": "C-1", "rule": "critical_high", "sensor": "probe1", "by": "al", "note": "n", "ts": 5}
    body[key] = value
    ack = _outcome(lambda p: decode_staff_ack(p, ("C-1", "critical_high", "probe1")), _dumps(body))
    if isinstance(ack, WireFormatError):
        assert ack.reason in DOCUMENTED
    else:
        (ack.by + ack.note).encode()  # a lone surrogate would fail the InfluxDB write later


def test_a_note_that_is_no_text_is_refused() -> None:
    """JSON can spell a lone surrogate; such a note could be neither stored nor sent, so the ack is refused."""
    body = b'{"v":1,"crate":"C-1","rule":"r","sensor":"s","by":"al","note":"\\ud800","ts":5}'
    with pytest.raises(WireFormatError) as caught:
        decode_staff_ack(body)
    assert caught.value.reason == "encoding"


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=400))
def test_any_bytes_decode_or_are_refused(payload: bytes) -> None:
    """Arbitrary bytes given to each decoder: a value or a WireFormatError; salvaging one never raises."""
    _check(lambda p: decode_telemetry(p, "C-1", NOW), payload)
    _check(decode_storage_ack, payload)
    _check(decode_staff_ack, payload)
    salvage_telemetry(payload)  # what the gateway reads of a refused message: never raises


@settings(max_examples=200, deadline=None)
@given(value=hostile_values)
def test_describe_is_short_for_any_value(value: Any) -> None:
    """Error details describe any decoded value briefly, never by a repr that could recurse or flood the log."""
    assert len(describe(value)) <= 72


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    """A minimal gateway config (cryo by default)."""
    path: Path = tmp_path_factory.mktemp("cfg") / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n')
    return load_config(path)


def _rejects(batch: Batch) -> list[str]:
    """The reasons of the rejected points in ``batch``."""
    rejected = [line for line in batch.lines if line.startswith("rejected")]
    return [line.split(",reason=")[1].split(" ")[0].split(",")[0] for line in rejected]


STATUS = {"v": 1, "crate": "C-1", "state": "online", "ts": TS}
EVENTS = [
    {"v": 1, "crate": "C-1", "ts": TS, "event": "lid_open"},
    {"v": 1, "crate": "C-1", "ts": TS, "event": "gap", "first_seq": 3, "last_seq": 4, "reason": "spool_full"},
]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["status", "events0", "events1"]),
    key=st.sampled_from(["v", "crate", "state", "ts", "event", "first_seq", "last_seq", "reason", "x"]),
    value=hostile_values,
)
def test_status_and_events_with_any_value_are_handled_or_rejected_once(
    config: GatewayConfig, kind: str, key: str, value: Any
) -> None:
    """Crate status and events with any field replaced: taken, or exactly one reject with a documented reason."""
    body = dict(STATUS if kind == "status" else EVENTS[int(kind[-1])])
    body[key] = value
    ingest, batch = Ingest(config), Batch()
    ingest.handle((f"coldchain/v1/crates/C-1/{kind.rstrip('01')}", _dumps(body), 1, 0), batch, NOW)
    rejects = _rejects(batch)
    assert len(rejects) <= 1
    assert set(rejects) <= DOCUMENTED
    assert "internal" not in rejects, batch.lines  # a decoder that raised: the cause must be fixed, not excused
    "\n".join(batch.lines).encode()


def test_a_future_event_time_is_refused_before_it_dates_a_point(config: GatewayConfig) -> None:
    """A gap event dated centuries ahead would make InfluxDB refuse its gap point: it is rejected as future_ts."""
    ingest, batch = Ingest(config), Batch()
    body = {**EVENTS[1], "ts": 2**52}
    ingest.handle(("coldchain/v1/crates/C-1/events", _dumps(body), 1, 0), batch, NOW)
    assert _rejects(batch) == ["future_ts"]
    assert not any(line.startswith("gap") for line in batch.lines)


def test_a_rejected_reading_with_a_future_time_does_not_date_its_gap(config: GatewayConfig) -> None:
    """A refused reading still settles its seq, but a gap it reveals is dated by the crate's newest good time."""
    ingest, batch = Ingest(config), Batch()
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", telemetry("C-1", 1), 1, 0), batch, NOW)
    refused = telemetry("C-1", 5, ts=2**52, v=2)  # refused for its version, before its time is looked at
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", refused, 2, 0), batch, NOW)
    gaps = [line for line in batch.lines if line.startswith("gap")]
    assert len(gaps) == 1
    assert gaps[0].endswith(f" {TS + 1000}")


def test_an_unforeseen_failure_rejects_that_message_only(config: GatewayConfig, mocker: Any) -> None:
    """A fault inside the alarm engine: that message is rejected as internal, its points taken back, the next stored."""
    ingest, batch = Ingest(config), Batch()
    engine = ingest.alarming.engine
    mocker.patch.object(engine, "telemetry", side_effect=[TypeError("unhashable type: 'dict'"), []])
    publications = ingest.handle(("coldchain/v1/crates/C-1/telemetry", telemetry("C-1", 1), 1, 0), batch, NOW)
    assert not any(line.startswith("temperature") for line in batch.lines)
    [reject] = [line for line in batch.lines if line.startswith("rejected")]
    assert "reason=internal" in reject
    assert "TypeError while judging the message" in reject
    [published] = [json.loads(p) for t, p, _ in publications if t == "coldchain/v1/rejected"]
    assert (published["reason"], published["crate"]) == ("internal", "C-1")
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", telemetry("C-1", 2), 2, 0), batch, NOW)
    assert [line.split(" ")[1] for line in batch.lines if line.startswith("temperature")] == ["value_c=-170.0,seq=2i"]
    batch.crates.add("C-1")
    ingest.close(batch, with_snapshots=False)
    assert batch.through == {"C-1": 2}  # the failed message counts as handled: no gap, nothing held back


def test_an_unforeseen_failure_publishes_nothing_of_that_message(config: GatewayConfig, mocker: Any) -> None:
    """A fault after the engine raised an alarm: neither the alarm nor its points leave, only the internal reject."""
    ingest, batch = Ingest(config), Batch()
    mocker.patch.object(ingest.alarming.notifier, "publish", side_effect=OSError("outbox disk full"))
    payload = telemetry("C-1", 1, value=-140.0, ts=NOW - 1000)
    publications = ingest.handle(("coldchain/v1/crates/C-1/telemetry", payload, 1, 0), batch, NOW)
    assert [topic for topic, _, _ in publications] == ["coldchain/v1/rejected"]
    assert [line.split(",")[0] for line in batch.lines] == ["rejected"]


def test_a_write_body_is_always_utf8() -> None:
    """A string UTF-8 cannot carry is written as its escape: the writer never dies of one line."""
    body = encode_lines(['rejected,reason=x detail="a\ud800b" 1', "m f=1i 2"])
    assert body == b'rejected,reason=x detail="a\\ud800b" 1\nm f=1i 2'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (json.dumps(STATUS).encode("utf-32-le"), "json"),  # valid UTF-8 (NUL bytes), but no JSON
        (json.dumps(STATUS).encode("utf-16"), "encoding"),
        (b"\xef\xbb\xbf" + json.dumps(STATUS).encode(), "encoding"),
        (json.dumps({**STATUS, "state": "on"}).encode().replace(b'"on"', b'"on\xed\xa0\x80line"'), "encoding"),
    ],
    ids=["utf-32", "utf-16", "bom", "utf-8-surrogate"],
)
def test_every_payload_is_utf8_json_or_refused(config: GatewayConfig, payload: bytes, reason: str) -> None:
    """Status and events are read as strictly as telemetry: UTF-16/32, a BOM or encoded surrogates are refused."""
    ingest, batch = Ingest(config), Batch()
    ingest.handle(("coldchain/v1/crates/C-1/status", payload, 1, 0), batch, NOW)
    assert _rejects(batch) == [reason]
