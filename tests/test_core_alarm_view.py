"""The core's decoder of retained alarms, shared by the board and ``coldchain alerts``."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from coldchain.alarms.lifecycle import Alarm
from coldchain.errors import WireFormatError
from coldchain.topics import alarm_topic
from coldchain.wire import MAX_OPTIONAL_CHARS, decode_alarm

TOPIC = alarm_topic("C-1", "critical_high", "probe1")
RAISED = Alarm(
    crate="C-1",
    rule="critical_high",
    kind="threshold",
    severity="critical",
    sensor="probe1",
    state="active",
    started_ts=1_764_086_400_000,
    raised_ts=1_764_086_460_000,
    raised_at=1_764_086_461_000,
    profile="cryo",
    seq=17,
    value_c=-148.2,
    threshold_c=-150.0,
)


def _payload(**changes: Any) -> bytes:
    """The raised alarm's wire form with fields changed (``...`` removes one)."""
    body = {**RAISED.to_wire(), **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_lifecycle_payload_decodes_with_its_identity_and_optional_fields() -> None:
    """The gateway's acknowledged alarm decodes to its values, id, and who acknowledged it, with the note."""
    acked = replace(RAISED, state="acknowledged", shipment="SH-9", acknowledged_by="Ana", acknowledged_ts=5, note="ok")
    alarm = decode_alarm(TOPIC, json.dumps(acked.to_wire()).encode())
    assert alarm is not None
    assert (alarm.key, alarm.severity, alarm.state, alarm.value_c, alarm.threshold_c) == (
        ("C-1", "critical_high", "probe1"),
        "critical",
        "acknowledged",
        -148.2,
        -150.0,
    )
    assert (alarm.ts, alarm.seq, alarm.started_ts, alarm.profile) == (RAISED.raised_ts, 17, RAISED.started_ts, "cryo")
    assert alarm.alarm_id == acked.alarm_id
    assert alarm.topic == TOPIC
    assert alarm.is_open
    assert [alarm.optional(k) for k in ("acknowledged_by", "note", "shipment")] == ["Ana", "ok", "SH-9"]
    assert alarm.optional("ended_ts") is None  # null on the wire: not carried


def test_v1_alarm_message_decodes_and_keeps_the_whole_payload() -> None:
    """The minimal v1 message (no optional fields) decodes; ``body`` is the payload as received."""
    message = {
        "v": 1, "crate": "C-1", "rule": "critical_high", "sensor": "probe1", "severity": "critical",
        "state": "cleared", "value_c": -170.0, "threshold_c": -150.0, "ts": 9, "seq": 3, "started_ts": 1,
        "profile": "cryo", "id": "C-1/critical_high/probe1/1",
    }  # fmt: skip
    alarm = decode_alarm(TOPIC, json.dumps(message).encode())
    assert alarm is not None
    assert (alarm.state, alarm.seq, alarm.alarm_id, alarm.extra) == ("cleared", 3, "C-1/critical_high/probe1/1", ())
    assert not alarm.is_open
    assert alarm.body == message


def test_rule_about_no_reading_has_no_seq_nor_value() -> None:
    """An offline alarm carries null seq and value_c: decoded as None, not refused."""
    alarm = decode_alarm(alarm_topic("C-1", "offline", "crate"), _payload(rule="offline", sensor="crate", seq=None))
    assert alarm is not None
    assert (alarm.seq, alarm.sensor) == (None, "crate")
    assert decode_alarm(TOPIC, _payload(value_c=None, threshold_c=...)) is not None


def test_missing_started_ts_profile_and_id_take_their_defaults() -> None:
    """started_ts defaults to ts, the id to the deterministic one, a profile that is no string to None."""
    alarm = decode_alarm(TOPIC, _payload(started_ts=..., id=..., profile=7))
    assert alarm is not None
    assert alarm.started_ts == alarm.ts
    assert alarm.alarm_id == f"C-1/critical_high/probe1/{alarm.ts}"
    assert alarm.profile is None


def test_unusable_optional_field_is_left_out_and_unknown_fields_travel_in_body() -> None:
    """A too-long or non-scalar optional field is dropped (not the alarm); a field of a newer engine stays in body."""
    alarm = decode_alarm(TOPIC, _payload(note="x" * (MAX_OPTIONAL_CHARS + 1), detail=["a"], newer="yes"))
    assert alarm is not None
    assert alarm.optional("note") is None
    assert alarm.optional("detail") is None
    assert alarm.body["newer"] == "yes"


def test_empty_payload_means_the_retained_alarm_was_removed() -> None:
    """An empty payload on an alarm topic decodes to None."""
    assert decode_alarm(TOPIC, b"") is None


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "named"),
    [
        ("coldchain/v1/alarms/C-1/critical_high", _payload(), "topic", "coldchain/v1/alarms/"),
        ("coldchain/v1/alarms/C-1/critical_high/+", b"", "topic", "coldchain/v1/alarms/"),
        ("coldchain/v1/crates/C-1/critical_high/probe1", _payload(), "topic", "coldchain/v1/alarms/"),
        (TOPIC, b"{not json", "json", "JSON"),
        (TOPIC, b"\xff\xfe\xfa", "encoding", "UTF-8"),
        (TOPIC, b"[1]", "schema", "object"),
        (alarm_topic("C-2", "critical_high", "probe1"), _payload(), "topic_mismatch", "crate/rule/sensor"),
        (TOPIC, _payload(sensor=...), "topic_mismatch", "crate/rule/sensor"),
        (TOPIC, _payload(severity="fatal"), "schema", "'severity'"),
        (TOPIC, _payload(state="open"), "schema", "'state'"),
        (TOPIC, _payload(ts="now"), "type", "'ts'"),
        (TOPIC, _payload(ts=...), "type", "'ts'"),
        (TOPIC, _payload(started_ts=-1), "type", "'started_ts'"),
        (TOPIC, _payload(seq=1.5), "type", "'seq'"),
        (TOPIC, _payload(value_c=True), "type", "'value_c'"),
        (TOPIC, _payload(threshold_c="-150"), "type", "'threshold_c'"),
    ],
)
def test_alarm_breaking_the_contract_is_refused_naming_the_field(
    topic: str, payload: bytes, reason: str, named: str
) -> None:
    """Wrong topic, JSON, identity, severity, state, times or numbers: a stable reason and the field in the detail."""
    with pytest.raises(WireFormatError) as caught:
        decode_alarm(topic, payload)
    assert caught.value.reason == reason
    assert named in caught.value.detail
