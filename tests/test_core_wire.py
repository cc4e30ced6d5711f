"""Wire contract v1: telemetry decoding, validation reasons and golden payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldchain.alarms.lifecycle import Alarm
from coldchain.errors import WireFormatError
from coldchain.wire import (
    TS_CORRECTED,
    TS_UNCERTAIN,
    Reading,
    StaffAck,
    StorageAck,
    Telemetry,
    decode_staff_ack,
    decode_storage_ack,
    decode_telemetry,
    encode,
    encode_alarm,
)

GOLDEN = (Path(__file__).parent / "data" / "telemetry_v1.json").read_bytes().strip()
GOOD = {
    "v": 1,
    "crate": "C-0042",
    "seq": 17,
    "ts": 1764086400123,
    "readings": [{"sensor": "probe1", "value_c": -162.31}],
}


def _payload(**changes: object) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_golden_payload_round_trips() -> None:
    """The golden payload decodes to the expected message and encodes back to the same bytes."""
    message = decode_telemetry(GOLDEN, topic_crate="C-0042")
    assert message == Telemetry(
        "C-0042", 17, 1764086400123, (Reading("probe1", -162.31), Reading("probe2", None, "OPEN"))
    )
    assert encode(message) == GOLDEN


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "encoding"),
        (b"{not json", "json"),
        (b"[1,2]", "schema"),
        (b"[" * 100_000 + b"]" * 100_000, "size"),
        (_payload(v=2), "version"),
        (_payload(v=True), "version"),
        (_payload(crate=...), "schema"),
        (_payload(crate="C/+"), "crate"),
        (_payload(crate="C-0043"), "crate_mismatch"),
        (_payload(seq="17"), "type"),
        (_payload(seq=True), "type"),
        (_payload(seq=-1), "range"),
        (_payload(ts=1.5), "type"),
        (_payload(readings=[]), "schema"),
        (_payload(readings=[{"sensor": "probe1", "value_c": -250.0}]), "range"),
        (_payload(readings=[{"sensor": "probe1", "value_c": "cold"}]), "type"),
        (_payload(readings=[{"sensor": "probe1", "value_c": None}]), "schema"),
        (_payload(readings=[{"sensor": "probe1", "value_c": None, "fault": "HOT"}]), "schema"),
        (_payload(readings=[{"sensor": "probe1", "value_c": 1.0}, {"sensor": "probe1", "value_c": 2.0}]), "schema"),
        (b'{"v":1,"crate":"C-0042","seq":1,"ts":1,"readings":[{"sensor":"p","value_c":NaN}]}', "range"),
    ],
)
def test_invalid_telemetry_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    """Each kind of bad payload is rejected with its stable reason label."""
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(payload, topic_crate="C-0042")
    assert caught.value.reason == reason


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    """Nesting deep enough to exhaust the parser's recursion is a rejection, not a crash."""
    deep = b'{"v":1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(WireFormatError):
        decode_telemetry(deep)


def test_future_timestamp_is_rejected_beyond_tolerance() -> None:
    """A ts far ahead of the gateway's clock is refused; a little drift is accepted."""
    now = GOOD["ts"]
    assert decode_telemetry(_payload(ts=now + 60_000), now_ms=now).ts == now + 60_000
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(_payload(ts=now + 3_600_000), now_ms=now)
    assert caught.value.reason == "future_ts"


def test_powered_on_round_trips_and_is_optional() -> None:
    """The crate's switch-on time travels as "powered_on" when known; without it the payload is as before."""
    ts = 1764086400123  # GOOD["ts"]
    message = decode_telemetry(_payload(powered_on=ts - 600_000), topic_crate="C-0042")
    assert message.powered_on == ts - 600_000
    assert json.loads(encode(message))["powered_on"] == ts - 600_000
    assert decode_telemetry(encode(message)) == message
    assert decode_telemetry(_payload(powered_on=ts)).powered_on == ts  # switched on with this very sample
    plain = decode_telemetry(_payload())
    assert plain.powered_on is None
    assert "powered_on" not in json.loads(encode(plain))
    assert decode_telemetry(_payload(powered_on=None)).powered_on is None


@pytest.mark.parametrize(
    ("powered_on", "reason"),
    [
        ("1764086400000", "type"),
        (1764086400000.5, "type"),
        (True, "type"),
        (0, "range"),
        (-5, "range"),
        (1764086400124, "range"),  # 1 ms after the sample it comes with
    ],
)
def test_bad_powered_on_is_rejected(powered_on: object, reason: str) -> None:
    """A switch-on time that is not an integer epoch millisecond at or before the sample's ts is refused."""
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(_payload(powered_on=powered_on), topic_crate="C-0042")
    assert caught.value.reason == reason
    assert "powered_on" in caught.value.detail


@pytest.mark.parametrize(
    ("flags", "carried"),
    [
        ({"ts_corrected": True}, TS_CORRECTED),
        ({"ts_uncertain": True}, TS_UNCERTAIN),
        ({"ts_corrected": True, "ts_uncertain": True}, TS_UNCERTAIN),  # the weaker claim wins
        ({"ts_corrected": False, "ts_uncertain": None}, None),
        ({}, None),
    ],
    ids=["corrected", "uncertain", "both", "false-or-null", "absent"],
)
def test_time_flags_are_carried_and_round_trip(flags: dict[str, object], carried: str | None) -> None:
    """ts_corrected / ts_uncertain set Telemetry.ts_flag; encoded back, only the flag carried is there, as true."""
    message = decode_telemetry(_payload(**flags), topic_crate="C-0042")
    assert message.ts_flag == carried
    body = json.loads(encode(message))
    assert {k: v for k, v in body.items() if k.startswith("ts_")} == ({carried: True} if carried else {})
    assert decode_telemetry(encode(message)) == message


@pytest.mark.parametrize("value", [1, 0, "true", [True], {"x": True}, 1.0])
@pytest.mark.parametrize("key", ["ts_corrected", "ts_uncertain"])
def test_a_time_flag_that_is_no_boolean_is_refused_as_type(key: str, value: object) -> None:
    """A time flag of any JSON type but a boolean (or null) is refused with reason type, naming the field."""
    with pytest.raises(WireFormatError) as caught:
        decode_telemetry(_payload(**{key: value}), topic_crate="C-0042")
    assert (caught.value.reason, key in caught.value.detail) == ("type", True)


def test_storage_ack_round_trips() -> None:
    """The gateway's stored_through acknowledgement encodes and decodes."""
    ack = StorageAck("C-0042", 99)
    assert encode(ack) == b'{"v":1,"crate":"C-0042","stored_through":99}'
    assert decode_storage_ack(encode(ack), topic_crate="C-0042") == ack


def test_alarm_message_has_a_deterministic_id() -> None:
    """The alarm id is made of crate, rule, sensor and start time."""
    alarm = Alarm("C-1", "critical_high", "high", "critical", "probe1", "active", 10, 20, 25, "cryo", seq=7)
    body = json.loads(encode_alarm(alarm))
    assert body["id"] == "C-1/critical_high/probe1/10"
    assert (body["seq"], body["ts"], body["state"]) == (7, 20, "active")


def test_staff_ack_optional_request_and_alarm_id_round_trip_and_are_checked() -> None:
    """An ack's optional request id and alarm id survive encoding; an id of another alarm key is refused."""
    ack = StaffAck(
        "C-1", "critical_high", "probe1", "Ana", "x", 5, request="a1b2", alarm_id="C-1/critical_high/probe1/9"
    )
    assert decode_staff_ack(encode(ack), ("C-1", "critical_high", "probe1")) == ack
    assert encode(ack).startswith(b'{"v":1,"request":"a1b2",')  # within a refusal's excerpt
    for bad in ("C-1/critical_high/probe2/9", "C-1/critical_high/probe1/x", 7):
        body = {**ack.to_wire(), "id": bad}
        with pytest.raises(WireFormatError, match="'id' must be the id of an alarm"):
            decode_staff_ack(json.dumps(body).encode())
