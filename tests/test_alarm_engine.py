"""The alarm engine end to end in the core: late backlogs, restarts, profiles, acknowledgements."""

from __future__ import annotations

import json

import pytest
from alarm_helpers import MIN, shipped_profiles, telemetry

from coldchain.alarms.engine import AlarmEngine
from coldchain.alarms.lifecycle import AckRejectedError, AlarmChange, LifecyclePolicy
from coldchain.wire import StaffAck, Telemetry

HOUR = 60 * MIN
POLICY = LifecyclePolicy(escalate_after_s={"critical": 900}, late_after_s=300, hold_s=60)


def _engine() -> AlarmEngine:
    return AlarmEngine(shipped_profiles(), "cryo", {"C-fridge": "refrigerated"}, POLICY, shipments={"C-1": "SH-7"})


def _changes(events: list[AlarmChange]) -> list[tuple[str, str, bool, bool]]:
    return [(e.alarm.rule, e.change, e.alarm.late, e.pages) for e in events]


def _thresholds(events: list[AlarmChange]) -> list[AlarmChange]:
    return [e for e in events if e.alarm.kind in ("high", "low")]


def _jitter(seq: int, value: float) -> float:
    """Real probes jitter in the last digit (an exactly repeated value is a stuck probe)."""
    return value + (seq % 3) * 0.01


def test_late_backlog_excursion_is_raised_late_with_true_times() -> None:
    """A backlog 5 h late holding a 20-min excursion raises it late, with true start and end, paging nobody."""
    engine = _engine()
    events = engine.status("C-1", True, 0)
    for i in range(10):
        events += engine.telemetry(telemetry(i, i * MIN, _jitter(i, -190.0)), i * MIN)
    assert events == []
    # offline from minute 10 (a flight); the backlog arrives at 5 h, in event-time order
    arrival = 5 * HOUR
    values = [-190.0] * 50 + [-155.0] * 5 + [-148.0] * 20 + [-170.0] * 10 + [-190.0] * 200
    for j, value in enumerate(values):
        seq = 10 + j
        events += engine.telemetry(telemetry(seq, seq * MIN, _jitter(seq, value)), arrival + j)
    assert all(e.alarm.late and not e.pages for e in events)
    assert "rate_of_rise" in {e.alarm.rule for e in events}  # -190 to -148 within minutes is steep
    events = _thresholds(events)
    assert _changes(events) == [
        ("warning_high", "active", True, False),
        ("warning_high", "cleared", True, False),
        ("critical_high", "active", True, False),
        ("critical_high", "cleared", True, False),
    ]
    critical = events[3].alarm
    assert (critical.started_ts, critical.ended_ts) == (65 * MIN, 85 * MIN)
    # nothing held back, no late alarm escalates; only the silence since the backlog is news
    assert [(e.alarm.rule, e.change) for e in engine.tick(arrival + 2 * HOUR)] == [("stale", "active")]


def test_backlog_ending_in_an_ongoing_excursion_pages_once_caught_up() -> None:
    """An excursion begun offline and still on when the backlog catches up pages as live, from its true start."""
    engine = _engine()
    arrival = 3 * HOUR
    events = []
    for seq in range(0, 180):
        ts = seq * MIN
        value = _jitter(seq, -190.0 if seq < 100 else -140.0)
        events += engine.telemetry(telemetry(seq, ts, value), max(arrival, ts))
    active = [e for e in _thresholds(events) if e.change == "active"]
    assert [(e.alarm.rule, e.pages, e.alarm.started_ts) for e in active] == [
        ("warning_high", True, 100 * MIN),
        ("critical_high", True, 100 * MIN),
    ]


def test_restart_with_an_active_alarm() -> None:
    """An engine restored from its JSON snapshot keeps the active alarm, does not raise it again, and clears it once."""
    engine = _engine()
    messages = [telemetry(i, i * MIN, v) for i, v in enumerate([-190.0, -149.0, -148.0, -147.0])]
    events = [e for m in messages[:3] for e in engine.telemetry(m, m.ts)]
    assert [e.alarm.rule for e in events] == ["warning_high", "critical_high"]
    saved = json.dumps(engine.snapshot())
    restarted = _engine()
    restarted.restore(json.loads(saved), now_ms=3 * MIN)
    replayed = [e for m in messages[1:] for e in restarted.telemetry(m, m.ts)]
    assert replayed == []
    assert {a.rule for a in restarted.book.open_alarms()} == {"warning_high", "critical_high"}
    cleared = restarted.telemetry(telemetry(4, 4 * MIN, -153.0), 4 * MIN)
    assert _changes(cleared) == [("critical_high", "cleared", False, False)]


def test_profile_from_config_then_telemetry_then_default() -> None:
    """A crate's configured profile wins over the one it reports, which wins over the default."""
    engine = _engine()
    fridge = Telemetry("C-fridge", 0, 0, telemetry(0, 0, 5.0).readings, profile="cryo")
    engine.telemetry(fridge, 0)
    engine.telemetry(Telemetry("C-2", 0, 0, telemetry(0, 0, 5.0).readings, profile="ambient"), 0)
    engine.telemetry(telemetry(0, 0, -190.0), 0)
    engine.telemetry(Telemetry("C-3", 0, 0, telemetry(0, 0, -190.0).readings, profile="plasma"), 0)
    profiles = {crate: m.profile.name for crate, m in engine.monitors.items()}
    assert profiles == {"C-fridge": "refrigerated", "C-2": "ambient", "C-1": "cryo", "C-3": "cryo"}
    assert engine.unknown_profiles == 1


def test_ack_through_the_engine_and_rejection() -> None:
    """An ack of an active alarm is recorded with who and when; a second ack is rejected with the reason."""
    engine = _engine()
    engine.telemetry(telemetry(0, 0, -140.0), 0)
    ack = StaffAck("C-1", "critical_high", "probe1", "Ana Ruiz", "topping up LN2", 5000)
    event = engine.acknowledge(ack)
    assert (event.alarm.shipment, event.alarm.to_wire()["shipment"]) == ("SH-7", "SH-7")
    assert (event.change, event.alarm.acknowledged_by, event.alarm.acknowledged_ts) == (
        "acknowledged",
        "Ana Ruiz",
        5000,
    )
    with pytest.raises(AckRejectedError, match="already acknowledged by Ana Ruiz"):
        engine.acknowledge(ack)
    assert [e.alarm.rule for e in engine.tick(HOUR)] == []  # acknowledged critical alarm: no escalation


def test_restart_does_not_blame_crates_for_the_gateways_own_downtime() -> None:
    """After a restart, stale-data rules count from the restart, not from the last reading before the gateway died."""
    engine = _engine()
    engine.status("C-1", True, 0)
    engine.telemetry(telemetry(0, 0, -190.0), 0)
    restarted = _engine()
    restarted.restore(json.loads(json.dumps(engine.snapshot())), now_ms=HOUR)
    assert restarted.tick(HOUR + 119_000) == []
    assert [(e.alarm.rule, e.alarm.started_ts) for e in restarted.tick(HOUR + 120_000)] == [("stale", HOUR)]


def test_forget_drops_the_crates_rule_state_only_when_no_alarm_is_open() -> None:
    """An engine forgets a crate (monitor and cleared alarms) only when none of its alarms is open or awaits review."""
    engine = _engine()
    for i in range(20):  # warm: warning_high and critical_high raised
        engine.telemetry(telemetry(i, i * MIN, _jitter(i, -140.0)), i * MIN)
    assert engine.forget("C-1") is False
    assert "C-1" in engine.monitors
    assert len(engine.book.open_alarms()) == 2
    events = []
    for i in range(20, 40):  # back below the hysteresis bands: both clear
        events += engine.telemetry(telemetry(i, i * MIN, _jitter(i, -190.0)), i * MIN)
    assert sorted((e.alarm.rule, e.change) for e in events) == [
        ("critical_high", "cleared"),
        ("warning_high", "cleared"),
    ]
    assert engine.forget("C-1") is False  # cleared before anyone acknowledged them: they await review
    for rule in ("critical_high", "warning_high"):
        engine.acknowledge(StaffAck("C-1", rule, "probe1", "Ana", "reviewed", 50 * MIN))
    assert engine.forget("C-1") is True
    assert "C-1" not in engine.monitors
    assert engine.book.get("C-1", "critical_high", "probe1") is None
