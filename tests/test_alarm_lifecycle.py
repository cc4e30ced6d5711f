"""Alarm lifecycle: raise, acknowledge, clear, escalate, late backlogs and restarts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from alarm_helpers import MIN, telemetry

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.lifecycle import AckRejectedError, AlarmBook, LifecyclePolicy, parse_lifecycle_policy
from coldchain.alarms.transition import AlarmTransition
from coldchain.errors import ConfigError, WireFormatError
from coldchain.profiles import Profile, ThresholdRule
from coldchain.settings.table import Table
from coldchain.topics import parse_topic, staff_ack_topic
from coldchain.wire import StaffAck, decode_staff_ack, encode

POLICY = LifecyclePolicy(escalate_after_s={"critical": 600}, late_after_s=60, hold_s=30)
CRYO = Profile("cryo", "", (ThresholdRule("critical_high", "high", -150.0, "critical", hysteresis_c=2.0),))


def _t(state: str, ts: int, started: int, rule: str = "critical_high") -> AlarmTransition:
    return AlarmTransition(rule, "high", "critical", "probe1", state, ts, started, seq=1, value_c=-149.0)


def _ack(by: str = "Ana Ruiz", rule: str = "critical_high", ts: int = 0) -> StaffAck:
    return StaffAck("C-1", rule, "probe1", by, "re-iced at hub", ts)


def _changes(events: list) -> list[tuple[str, str, bool]]:  # type: ignore[type-arg]
    return [(e.change, e.alarm.state, e.alarm.late) for e in events]


def test_active_acknowledged_cleared() -> None:
    """A live alarm goes active -> acknowledged (by whom, with the note) -> cleared, each event once."""
    book = AlarmBook(POLICY)
    (raised,) = book.apply("C-1", _t("active", 1000, 1000), arrival_ms=1100, profile="cryo")
    assert (raised.change, raised.pages, raised.alarm.alarm_id) == ("active", True, "C-1/critical_high/probe1/1000")
    acked = book.acknowledge(_ack(ts=5000))
    assert acked.ts == 5000
    assert (acked.alarm.state, acked.alarm.acknowledged_by, acked.alarm.note) == (
        "acknowledged",
        "Ana Ruiz",
        "re-iced at hub",
    )
    (cleared,) = book.apply("C-1", _t("cleared", 9000, 1000), arrival_ms=9100)
    assert (cleared.change, cleared.alarm.ended_ts, cleared.alarm.acknowledged_by) == ("cleared", 9000, "Ana Ruiz")
    wire = cleared.alarm.to_wire()
    assert (wire["state"], wire["ts"], wire["started_ts"], wire["raised_ts"]) == ("cleared", 9000, 1000, 1000)
    assert cleared.idempotency_key == "C-1/critical_high/probe1/1000/cleared"


def test_alarm_id_matches_the_wire_message() -> None:
    """The lifecycle's alarm id is crate/rule/sensor/started_ts, as readers of the retained alarm decode it."""
    (event,) = AlarmBook(POLICY).apply("C-1", _t("active", 1000, 900), arrival_ms=1000)
    assert event.alarm.alarm_id == "C-1/critical_high/probe1/900"
    wire = event.alarm.to_wire()
    assert (wire["id"], wire["ts"], wire["seq"], wire["v"]) == ("C-1/critical_high/probe1/900", 1000, 1, 1)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ([], "no alarm C-1/critical_high/probe1 is known"),
        ([("active", 1000, 1000), ("ack", 0, 0)], "already acknowledged by Ana Ruiz"),
        ([("active", 1000, 1000), ("ack", 0, 0), ("cleared", 2000, 1000)], "already acknowledged by Ana Ruiz"),
        ([("active", 1000, 1000), ("cleared", 2000, 1000), ("ack", 0, 0)], "already acknowledged by Ana Ruiz"),
    ],
)
def test_ack_of_a_non_active_alarm_is_rejected(setup: list[tuple[str, int, int]], reason: str) -> None:
    """Acknowledging an unknown, already acknowledged or already reviewed alarm is refused with the reason."""
    book = AlarmBook(POLICY)
    for state, ts, started in setup:
        if state == "ack":
            book.acknowledge(_ack())
        else:
            book.apply("C-1", _t(state, ts, started), arrival_ms=ts)
    with pytest.raises(AckRejectedError, match=reason):
        book.acknowledge(_ack(by="Ben"))


def test_ack_of_an_alarm_that_cleared_unacknowledged_records_the_review() -> None:
    """An alarm that cleared before anyone acknowledged it needs review; an ack records it and it stays cleared."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 1000, 1000), arrival_ms=1000)
    (cleared,) = book.apply("C-1", _t("cleared", 2000, 1000), arrival_ms=2000)
    assert cleared.alarm.needs_review
    reviewed = book.acknowledge(_ack(ts=3000))
    assert (reviewed.change, reviewed.alarm.state, reviewed.alarm.acknowledged_by) == (
        "acknowledged", "cleared", "Ana Ruiz",
    )  # fmt: skip
    assert not reviewed.alarm.needs_review
    assert (reviewed.alarm.to_wire()["ts"], reviewed.alarm.to_wire()["acknowledged_ts"]) == (2000, 3000)


def test_late_excursion_is_reviewed_by_an_ack() -> None:
    """A late excursion (it began and ended while the crate was offline) needs review; an ack records it."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 60_000, 60_000), arrival_ms=5 * 3_600_000)
    late = book.apply("C-1", _t("cleared", 900_000, 60_000), arrival_ms=5 * 3_600_000)[-1].alarm
    assert (late.late, late.needs_review) == (True, True)
    reviewed = book.acknowledge(_ack(ts=5 * 3_600_000 + 1000)).alarm
    assert (reviewed.state, reviewed.late, reviewed.acknowledged_by, reviewed.needs_review) == (
        "cleared", True, "Ana Ruiz", False,
    )  # fmt: skip


def test_ack_naming_another_alarm_id_is_rejected() -> None:
    """An ack for the alarm the person saw is refused once another alarm is current on that crate/rule/sensor."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 1000, 1000), arrival_ms=1000)
    book.apply("C-1", _t("cleared", 2000, 1000), arrival_ms=2000)
    book.apply("C-1", _t("active", 5000, 5000), arrival_ms=5000)
    old = StaffAck("C-1", "critical_high", "probe1", "Ana", "seen", 6000, alarm_id="C-1/critical_high/probe1/1000")
    with pytest.raises(AckRejectedError, match="C-1/critical_high/probe1/1000 is no longer current"):
        book.acknowledge(old)
    assert book.acknowledge(replace(old, alarm_id="C-1/critical_high/probe1/5000")).alarm.state == "acknowledged"


def test_crate_with_an_alarm_awaiting_review_is_not_forgotten() -> None:
    """An idle crate is forgotten only once each cleared alarm of it was acknowledged or reviewed."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 1000, 1000), arrival_ms=1000)
    book.apply("C-1", _t("cleared", 2000, 1000), arrival_ms=2000)
    assert not book.forget("C-1")
    book.acknowledge(_ack(ts=3000))
    assert book.forget("C-1")


def test_unacknowledged_alarm_escalates_once() -> None:
    """An active alarm not acknowledged within the severity's time escalates once; an acknowledged one never."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 0, 0), arrival_ms=0)
    book.apply("C-1", _t("active", 0, 0, rule="other"), arrival_ms=0)
    book.acknowledge(_ack(rule="other"))
    assert book.tick(599_999) == []
    (escalated,) = book.tick(600_000)
    assert (escalated.change, escalated.pages, escalated.alarm.rule, escalated.ts) == (
        "escalated", True, "critical_high", 600_000,
    )  # fmt: skip
    assert book.tick(10 * 600_000) == []


def test_late_backlog_excursion_is_reported_late_and_pages_nobody() -> None:
    """An excursion that began and ended before its data arrived is raised with true start and end, marked late."""
    book = AlarmBook(POLICY)
    arrival = 5 * 3_600_000  # the crate was offline for hours (a flight)
    assert book.apply("C-1", _t("active", 60_000, 60_000), arrival_ms=arrival) == []
    events = book.apply("C-1", _t("cleared", 900_000, 60_000), arrival_ms=arrival + 50)
    assert _changes(events) == [("active", "active", True), ("cleared", "cleared", True)]
    assert [e.pages for e in events] == [False, False]
    assert (events[1].alarm.started_ts, events[1].alarm.ended_ts) == (60_000, 900_000)
    assert [e.ts for e in events] == [60_000, 900_000]
    assert book.tick(arrival + 10 * 3_600_000) == []  # a late alarm never escalates


def test_backlog_alarm_still_active_is_announced_live_once_caught_up() -> None:
    """A backlog excursion still going on when the crate catches up pages as live, dated from its true start."""
    book = AlarmBook(POLICY)
    arrival = 3_600_000
    assert book.apply("C-1", _t("active", 60_000, 60_000), arrival_ms=arrival) == []
    assert book.caught_up("C-1", 120_000, arrival) == []
    (live,) = book.caught_up("C-1", arrival - 1000, arrival + 10)
    assert (live.change, live.pages, live.alarm.started_ts) == ("active", True, 60_000)


def test_held_backlog_alarm_is_announced_after_hold_time() -> None:
    """If the crate never catches up, a held backlog alarm is announced hold_s after it arrived."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 0, 0), arrival_ms=3_600_000)
    assert book.tick(3_629_999) == []
    assert _changes(book.tick(3_630_000)) == [("active", "active", False)]


def test_restart_neither_loses_nor_duplicates_an_alarm() -> None:
    """A book restored from JSON keeps the active alarm and ignores the replayed transition that raised it."""
    monitor, book = CrateMonitor("C-1", CRYO), AlarmBook(POLICY)
    messages = [telemetry(i, i * MIN, v) for i, v in enumerate([-190.0, -149.0, -148.0])]
    events = []
    for message in messages:
        for t in monitor.feed(message, message.ts):
            events += book.apply("C-1", t, message.ts)
    assert _changes(events) == [("active", "active", False)]
    saved = json.loads(json.dumps(book.to_dict()))
    # the gateway died before acknowledging the last two messages to the broker: they come again,
    # to a monitor restored from an older snapshot
    restored, monitor = AlarmBook.from_dict(saved, POLICY), CrateMonitor("C-1", CRYO)
    replayed = []
    for message in messages[1:]:
        for t in monitor.feed(message, message.ts):
            replayed += restored.apply("C-1", t, message.ts)
    assert replayed == []
    assert [a.alarm_id for a in restored.open_alarms()] == ["C-1/critical_high/probe1/60000"]
    (cleared,) = [
        e for t in monitor.feed(telemetry(3, 4 * MIN, -153.0), 4 * MIN) for e in restored.apply("C-1", t, 4 * MIN)
    ]
    assert (cleared.change, cleared.alarm.started_ts) == ("cleared", 60_000)


def test_book_round_trips_through_json() -> None:
    """Every alarm field, held backlog alarms and known ids survive to_dict -> JSON -> from_dict."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 0, 0), arrival_ms=0)
    book.acknowledge(_ack(ts=10))
    book.apply("C-1", _t("active", 0, 0, rule="held"), arrival_ms=3_600_000)
    data = book.to_dict()
    again = AlarmBook.from_dict(json.loads(json.dumps(data)), POLICY)
    assert again.to_dict() == data
    assert again.get("C-1", "critical_high", "probe1") == book.get("C-1", "critical_high", "probe1")


def test_staff_ack_payload_round_trip() -> None:
    """A StaffAck encodes to the documented payload and decodes back, checked against its topic."""
    ack = StaffAck("C-1", "critical_high", "probe1", "Ana Ruiz", "re-iced", 1764086400123)
    payload = encode(ack)
    assert json.loads(payload) == {
        "v": 1, "crate": "C-1", "rule": "critical_high", "sensor": "probe1",
        "by": "Ana Ruiz", "note": "re-iced", "ts": 1764086400123,
    }  # fmt: skip
    topic = staff_ack_topic("C-1", "critical_high", "probe1")
    assert topic == "coldchain/v1/acks/C-1/critical_high/probe1"
    assert decode_staff_ack(payload, parse_topic(topic).ids) == ack


@pytest.mark.parametrize(
    ("body", "topic", "reason"),
    [
        ({"by": ""}, None, "schema"),
        ({"by": "x" * 101}, None, "schema"),
        ({"note": "x" * 1001}, None, "size"),
        ({"rule": "a/b"}, None, "schema"),
        ({"ts": "now"}, None, "type"),
        ({}, ("C-2", "critical_high", "probe1"), "topic_mismatch"),
        ({"v": 2}, None, "version"),
    ],
)
def test_bad_staff_ack_is_rejected(body: dict[str, object], topic: tuple[str, str, str] | None, reason: str) -> None:
    """A malformed or mismatched acknowledgement raises WireFormatError with a stable reason."""
    good = {"v": 1, "crate": "C-1", "rule": "critical_high", "sensor": "probe1", "by": "Ana", "note": "", "ts": 1}
    with pytest.raises(WireFormatError) as caught:
        decode_staff_ack(json.dumps(good | body).encode(), topic)
    assert caught.value.reason == reason


def test_lifecycle_policy_from_config() -> None:
    """[alarms] sets escalation per severity, the backlog threshold and the hold; omitted keys keep defaults."""
    root = Table({"alarms": {"escalate_after_s": {"critical": 300}, "late_after_s": 120}}, "gateway.toml")
    policy = parse_lifecycle_policy(root.table("alarms"))
    root.finish()
    assert (dict(policy.escalate_after_s), policy.late_after_s, policy.hold_s) == ({"critical": 300.0}, 120.0, 60.0)
    assert parse_lifecycle_policy(Table({}, "g.toml")) == LifecyclePolicy()


@pytest.mark.parametrize(
    ("alarms", "message"),
    [
        ({"escalate_after_s": {"urgent": 60}}, "gateway.toml: alarms.escalate_after_s.urgent: is not a severity"),
        ({"escalate_after_s": {"critical": 0}}, "gateway.toml: alarms.escalate_after_s.critical: 0 is below"),
        ({"late_after_s": "5m"}, "gateway.toml: alarms.late_after_s: must be a number"),
    ],
)
def test_bad_lifecycle_policy_names_file_and_key(alarms: dict[str, object], message: str) -> None:
    """A bad [alarms] value raises a ConfigError naming the file and the key."""
    with pytest.raises(ConfigError, match=message):
        parse_lifecycle_policy(Table({"alarms": alarms}, "gateway.toml").table("alarms"))


def test_forget_keeps_a_crate_with_an_open_alarm_and_drops_one_whose_alarms_cleared() -> None:
    """An idle crate is forgotten only once its alarms cleared; afterwards the same excursion can be raised anew."""
    book = AlarmBook(POLICY)
    book.apply("C-1", _t("active", 1000, 1000), arrival_ms=1100)
    book.apply("C-10", _t("active", 1000, 1000), arrival_ms=1100)  # a crate whose id extends C-1's
    assert book.forget("C-1") is False  # active: still someone's business
    book.acknowledge(_ack())
    assert book.forget("C-1") is False  # acknowledged is open too
    book.apply("C-1", _t("cleared", 9000, 1000), arrival_ms=9100)
    assert book.forget("C-1") is True
    assert book.get("C-1", "critical_high", "probe1") is None
    assert [a.crate for a in book.open_alarms()] == ["C-10"]
    assert [a["crate"] for a in book.to_dict()["alarms"]] == ["C-10"]
    # the id is no longer remembered as raised: the crate starts afresh
    assert _changes(book.apply("C-1", _t("active", 1000, 1000), arrival_ms=20_000)) == [("active", "active", False)]


def test_alarm_to_dict_round_trips_every_field() -> None:
    """The book's persisted form of an alarm holds every field and restores to an equal alarm."""
    book = AlarmBook(POLICY)
    (event,) = book.apply("C-1", _t("active", 1000, 900), arrival_ms=1000, profile="cryo", shipment="SH-7")
    data = event.alarm.to_dict()
    assert (data["shipment"], data["raised_at"], data["started_ts"]) == ("SH-7", 1000, 900)
    assert type(event.alarm).from_dict(json.loads(json.dumps(data))) == event.alarm
