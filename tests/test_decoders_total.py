"""Every reader of alarms and crate status is total: any JSON in any field, any bytes, any topic ->
a value that can be shown, or the contract's WireFormatError; never another exception."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytest_mock import MockerFixture

from board.broker import BoardEvent, BrokerLink
from board.config import MqttSettings
from board.history import HistoryReadError, parse_history
from board.hub import Hub
from board.messages import alarm_json
from board.state import BoardState
from cli.alerts import Board as AlertsBoard
from cli.alerts import _review, _table, _transition
from cli.mqtt_read import Inbound
from coldchain.alarms.ack_answer import answer_to
from coldchain.alarms.lifecycle import Alarm
from coldchain.errors import WireFormatError
from coldchain.topics import alarm_topic, status_topic
from coldchain.wire import OPTIONAL_FIELDS, AlarmView, CrateStatus, StaffAck, decode_alarm, decode_status

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW_MS = 1_795_000_000_000

# Any JSON value, and the values that break careless readers: huge and boundary integers,
# NaN and infinities (written as NaN/Infinity tokens), text with control characters and lone surrogates.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([-1, 0, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 10**308, 10**400])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "\x1b[2J", "\ud800", "x" * 2000, "critical", "active", "C-1", "offline"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)

TOPIC = alarm_topic("C-1", "critical_high", "probe1")
RAISED = Alarm(
    crate="C-1",
    rule="critical_high",
    kind="threshold",
    severity="critical",
    sensor="probe1",
    state="active",
    started_ts=NOW_MS - 60_000,
    raised_ts=NOW_MS,
    raised_at=NOW_MS,
    profile="cryo",
    seq=17,
    value_c=-148.2,
    threshold_c=-150.0,
    shipment="S-1",
    acknowledged_by="Ana",
    note="re-iced",
).to_wire()
ALARM_FIELDS = sorted({*RAISED, *OPTIONAL_FIELDS, "v", "id", "by"})
STATUS_TOPIC = status_topic("C-1")
STATUS = {"v": 1, "crate": "C-1", "state": "offline", "ts": NOW_MS}


def _encoded(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def _alarm_or_error(topic: str, payload: bytes) -> AlarmView | None:
    """decode_alarm, with its own error as the only exception allowed."""
    try:
        return decode_alarm(topic, payload)
    except WireFormatError:
        return None


def _shown_everywhere(alarm: AlarmView) -> None:
    """What the board's page, its JSON API and ``coldchain alerts`` make of an alarm: all of it must work."""
    json.dumps(alarm_json(alarm), allow_nan=False)
    json.dumps(alarm.body, allow_nan=False, sort_keys=True)
    _table([alarm], {"C-1": NOW_MS}, NOW_MS).encode()
    _transition(alarm).encode()
    _review([alarm], NOW_MS).encode()
    state = BoardState({}, "cryo")
    state.apply_alarm(alarm.key, alarm)
    json.dumps(state.snapshot(), allow_nan=False)


@FAST
@given(field=st.sampled_from(ALARM_FIELDS), value=JSON_VALUES)
@example(field="value_c", value=10**400)
@example(field="value_c", value=float("nan"))
@example(field="started_ts", value=2**70)
@example(field="note", value="\ud800")
@example(field="detail", value={"OPEN": 1})
def test_alarm_with_any_json_in_any_field_decodes_to_a_showable_alarm_or_the_contracts_error(
    field: str, value: Any
) -> None:
    """Any JSON value in any field of a valid alarm: an alarm every reader can show, or WireFormatError."""
    alarm = _alarm_or_error(TOPIC, _encoded({**RAISED, field: value}))
    if alarm is not None:
        _shown_everywhere(alarm)


@FAST
@given(topic=st.text(max_size=80) | st.just(TOPIC), payload=st.binary(max_size=300))
@example(topic=TOPIC, payload=b"[" * 100_000)
@example(topic=TOPIC, payload=b'{"detail":' + b"[" * 50 + b"]" * 50 + b"}")
@example(topic=TOPIC, payload=b"\xff\xfe\x00{")
@example(topic=TOPIC, payload=b"1" * 5000)
def test_alarm_from_any_bytes_on_any_topic_decodes_or_raises_the_contracts_error(topic: str, payload: bytes) -> None:
    """Any bytes on any topic: an alarm, None (removed) or WireFormatError."""
    alarm = _alarm_or_error(topic, payload)
    if alarm is not None:
        _shown_everywhere(alarm)


def test_nesting_no_reader_could_print_is_refused_as_json() -> None:
    """A body nested beyond MAX_DEPTH (even in an unknown field) is refused, not carried to `alerts --json`."""
    payload = _encoded({**RAISED, "newer": json.loads("[" * 40 + "]" * 40)})
    with pytest.raises(WireFormatError) as caught:
        decode_alarm(TOPIC, payload)
    assert caught.value.reason == "json"


@FAST
@given(field=st.sampled_from(["v", "crate", "state", "ts"]), value=JSON_VALUES)
def test_status_with_any_json_in_any_field_decodes_or_raises_the_contracts_error(field: str, value: Any) -> None:
    """Any JSON value in any field of a crate status: a CrateStatus with a bounded ts, or WireFormatError."""
    try:
        status = decode_status(STATUS_TOPIC, _encoded({**STATUS, field: value}))
    except WireFormatError:
        return
    assert isinstance(status, CrateStatus)
    assert 0 <= status.ts < 2**53


@FAST
@given(topic=st.text(max_size=60) | st.just(STATUS_TOPIC), payload=st.binary(max_size=200))
@example(topic=STATUS_TOPIC, payload=b"[" * 100_000)
def test_status_from_any_bytes_on_any_topic_decodes_or_raises_the_contracts_error(topic: str, payload: bytes) -> None:
    """Any bytes on any topic: a CrateStatus or WireFormatError."""
    with contextlib.suppress(WireFormatError):
        decode_status(topic, payload)


def _alarm_with(field: str, value: Any) -> Inbound:
    return Inbound(TOPIC, _encoded({**RAISED, field: value}), True)


def _status_with(field: str, value: Any) -> Inbound:
    return Inbound(STATUS_TOPIC, _encoded({**STATUS, field: value}), True)


_MESSAGES = st.one_of(
    st.builds(_alarm_with, st.sampled_from(ALARM_FIELDS), JSON_VALUES),
    st.builds(_status_with, st.sampled_from(list(STATUS)), JSON_VALUES),
    st.builds(lambda p: Inbound(STATUS_TOPIC, p, True), st.binary(max_size=100)),
    st.builds(lambda t, p: Inbound(f"coldchain/v1/{t}", p, True), st.text(max_size=40), st.binary(max_size=100)),
)


@FAST
@given(messages=st.lists(_MESSAGES, max_size=6))
def test_alerts_takes_any_messages_and_still_lists_the_good_alarm(messages: list[Inbound]) -> None:
    """`coldchain alerts` takes any retained messages without an internal error and lists a good alarm beside them."""
    err = io.StringIO()
    board = AlertsBoard(err)
    good = alarm_topic("C-2", "critical_high", "probe1")
    board.take(Inbound(good, _encoded({**RAISED, "crate": "C-2"}), True))
    for message in messages:
        board.take(message)
    listed = board.listing(include_cleared=True)
    assert good in [a.topic for a in listed]
    _table(listed, board.offline, int(time.time() * 1000)).encode()
    assert "internal error" not in err.getvalue()


@FAST
@given(field=st.sampled_from(ALARM_FIELDS), value=JSON_VALUES)
def test_board_hub_keeps_a_parsable_snapshot_whatever_alarm_arrives(field: str, value: Any) -> None:
    """Whatever alarm decodes, the hub's snapshot and events stay strict JSON and keep the good alarm."""
    hub = Hub(BoardState({}, "cryo"))
    good = decode_alarm(alarm_topic("C-2", "critical_high", "probe1"), _encoded({**RAISED, "crate": "C-2"}))
    assert good is not None
    hub.apply(BoardEvent("alarm", key=good.key, alarm=good))
    alarm = _alarm_or_error(TOPIC, _encoded({**RAISED, field: value}))
    if alarm is not None:
        hub.apply(BoardEvent("alarm", key=alarm.key, alarm=alarm))
    snapshot = json.loads(json.dumps(hub.snapshot(), allow_nan=False))
    assert "C-2" in [a["crate"] for a in snapshot["alarms"]]
    assert hub.dropped_events == 0


def test_board_hub_leaves_out_an_alarm_no_page_could_parse() -> None:
    """An alarm that reached the hub with NaN (no decoder of ours makes one) is dropped and counted, not shown."""
    hub = Hub(BoardState({}, "cryo"))
    good = decode_alarm(TOPIC, _encoded(RAISED))
    assert good is not None
    bad = dataclasses.replace(good, rule="warning_high", value_c=float("nan"))
    hub.apply(BoardEvent("alarm", key=good.key, alarm=good))
    hub.apply(BoardEvent("alarm", key=bad.key, alarm=bad))
    snapshot = json.loads(json.dumps(hub.snapshot(), allow_nan=False))
    assert [a["rule"] for a in snapshot["alarms"]] == ["critical_high"]
    assert hub.dropped_events == 1


def _message(topic: bytes, payload: bytes) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=topic)
    message.payload = payload
    return message


def test_board_link_survives_a_decoder_failing_unexpectedly(mocker: MockerFixture) -> None:
    """A decoder fault (any exception) on one message is counted and logged; the next message goes through."""
    settings_ = MqttSettings(host="127.0.0.1", port=1, client_id="board-test", keepalive_s=5, protocol="3.1.1")
    delivered: list[BoardEvent] = []
    link = BrokerLink(settings_, delivered.append)
    fault = mocker.patch("board.broker.decode_alarm", side_effect=TypeError("unhashable type: 'dict'"))
    link._on_message(link._client, None, _message(TOPIC.encode(), _encoded(RAISED)))
    link._on_message(link._client, None, _message(b"coldchain/v1/alarms/\xff/r/s", _encoded(RAISED)))
    assert (link.rejected, delivered) == (2, [])
    mocker.stop(fault)
    link._on_message(link._client, None, _message(TOPIC.encode(), _encoded(RAISED)))
    assert [e.kind for e in delivered] == ["alarm"]


ACK = StaffAck("C-1", "critical_high", "probe1", "Ana", "re-iced", 1_795_000_000_000, request="r1", alarm_id=None)


@FAST
@given(
    topic=st.sampled_from(["coldchain/v1/rejected", alarm_topic("C-1", "critical_high", "probe1"), "x/y"]),
    body=st.dictionaries(
        st.sampled_from(
            [
                "request",
                "reason",
                "detail",
                "crate",
                "rule",
                "sensor",
                "severity",
                "state",
                "ts",
                "acknowledged_by",
                "acknowledged_ts",
                "id",
            ]
        ),
        JSON_VALUES,
        max_size=8,
    ),
)
@example(topic="coldchain/v1/rejected", body={"request": "r1", "reason": "\ud800", "detail": ["x"]})
def test_ack_answer_is_total_for_any_message(topic: str, body: dict[str, Any]) -> None:
    """Whatever arrives on the alarm or rejected topic, the answer to an ack is an AckAnswer or None, printable."""
    payload = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    answer = answer_to(ACK, topic, payload)
    if answer is not None:
        assert answer.reason.isprintable()
        answer.reason.encode("utf-8")


@FAST
@given(payload=st.binary(max_size=200))
def test_ack_answer_is_total_for_any_bytes(payload: bytes) -> None:
    """Any bytes on the rejected topic are an answer only when they carry this ack's request id."""
    assert answer_to(ACK, "coldchain/v1/rejected", payload) is None or b"r1" in payload


ROW_VALUES = st.one_of(JSON_VALUES, st.floats(allow_nan=True, allow_infinity=True), st.integers())


@FAST
@given(
    results=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "error": JSON_VALUES,
                "series": st.lists(
                    st.fixed_dictionaries(
                        {"columns": st.just(["time", "started_ts", "id", "change", "by", "ended_ts", "late"])},
                        optional={
                            "tags": st.dictionaries(st.sampled_from(["crate", "shipment", "rule"]), JSON_VALUES),
                            "values": st.lists(st.lists(ROW_VALUES, min_size=7, max_size=7), max_size=3),
                        },
                    )
                    | JSON_VALUES,
                    max_size=2,
                ),
            },
        )
        | JSON_VALUES,
        max_size=3,
    )
)
def test_board_history_reader_is_total(results: list[Any]) -> None:
    """Whatever InfluxDB answers, the board's history is a FleetHistory or the reader's own error."""
    try:
        fleet = parse_history({"results": results}, 31.0)
    except HistoryReadError:
        return
    json.dumps([list(c.trips) for c in fleet.crates.values()])
