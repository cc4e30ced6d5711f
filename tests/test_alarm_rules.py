"""Rule kinds on readings in event-time order: what must raise, when, and what must not."""

from __future__ import annotations

import json
import re

import pytest
from alarm_helpers import (
    HOUR,
    MIN,
    lid_spikes,
    ln2_running_out,
    profile_of,
    run_trace,
    shipped_profiles,
    summary,
    telemetry,
)

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.trend import linear_fit
from coldchain.errors import ConfigError

CUMULATIVE = """
[p]
[[p.rules]]
name = "budget"
kind = "cumulative"
severity = "critical"
low_c = 2.0
high_c = 8.0
budget_s = 1200
"""


def _feed(monitor: CrateMonitor, samples: list[tuple[float, float | None]]) -> list[tuple[str, str, int, int]]:
    """Feed (minutes, value) samples; return (rule, state, ts min, started min) per transition."""
    out = []
    for seq, (minute, value) in enumerate(samples):
        ts = round(minute * MIN)
        for t in monitor.feed(telemetry(seq, ts, value, None if value is not None else "OPEN"), ts):
            out.append((t.rule, t.state, t.ts // MIN, t.started_ts // MIN))
    return out


def test_linear_fit_recovers_slope_and_value() -> None:
    """A least-squares fit of an exact line returns its slope in °C/h and its last value."""
    fit = linear_fit([(0, -190.0), (HOUR, -188.5), (2 * HOUR, -187.0)])
    assert fit == pytest.approx((1.5, -187.0))
    assert linear_fit([(5, 1.0), (5, 2.0)]) is None


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # 10 min out, back in, 5 min out, 10 more out: the counter sums across excursions; 20 min is used up at
        # minute 45 (10 + 5 + 5); raised at the next reading and never cleared once back in range
        (
            [(0, 5), (5, 9), (15, 5), (25, 1), (30, 5), (40, 9), (50, 5), (60, 5), (300, 5)],
            [("budget", "active", 50, 45)],
        ),
        # 19 min out in total: no alarm
        ([(0, 9), (19, 5), (30, 5)], []),
        # a value holds at most max_hold_s (900 s): a 60-min silence after one warm reading counts 15 min
        ([(0, 9), (60, 5), (70, 9), (80, 5)], [("budget", "active", 80, 75)]),
    ],
)
def test_cumulative_budget(
    samples: list[tuple[float, float | None]], expected: list[tuple[str, str, int, int]]
) -> None:
    """The cumulative rule raises once the shipment's out-of-range time exceeds the budget, dated when it ran out."""
    assert _feed(CrateMonitor("C-1", profile_of(CUMULATIVE)), samples) == expected


def test_cumulative_counter_survives_restore() -> None:
    """A monitor restored from a JSON snapshot keeps the budget already used."""
    first = CrateMonitor("C-1", profile_of(CUMULATIVE))
    _feed(first, [(0, 9), (15, 5)])
    second = CrateMonitor("C-1", profile_of(CUMULATIVE))
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert _feed(second, [(20, 9), (26, 5)]) == [("budget", "active", 26, 25)]


def test_start_delay_ignores_settling_probes() -> None:
    """During the refrigerated profile's start delay a warm probe raises nothing; afterwards the delays apply."""
    monitor = CrateMonitor("C-1", shipped_profiles()["refrigerated"])
    monitor.switched_on(0)
    out = _feed(monitor, [(m, 20.0) for m in range(0, 10)] + [(m, 9.0) for m in range(10, 30)])
    assert out == [("critical_high", "active", 25, 10)]


def test_ln2_running_out_is_predicted_hours_ahead() -> None:
    """A dry shipper running out of nitrogen raises the prediction hours before the warning and critical limits."""
    out = run_trace(CrateMonitor("C-1", shipped_profiles()["cryo"]), ln2_running_out, hours=32)
    assert summary(out) == [
        ("predicted_excursion", "active"),
        ("warning_high", "active"),
        ("critical_high", "active"),
    ]
    predicted, _, critical = out
    assert critical.ts - predicted.ts > 8 * HOUR
    assert predicted.predicted_ts is not None
    assert "predicted to reach -150.0 °C in ~" in predicted.detail


def test_steady_shipper_and_lid_spikes_raise_nothing() -> None:
    """Two days of probe noise at -190 °C and four lid-opening spikes raise no trend or threshold alarm."""
    cryo = shipped_profiles()["cryo"]
    assert run_trace(CrateMonitor("C-1", cryo), lambda h: -190.0, hours=48) == []
    assert run_trace(CrateMonitor("C-1", cryo), lid_spikes, hours=24) == []


def test_vacuum_failure_raises_rate_of_rise_first() -> None:
    """A shipper warming 10 °C/h raises rate of rise, then the prediction, well before the limits."""
    out = run_trace(CrateMonitor("C-1", shipped_profiles()["cryo"]), lambda h: -190 + max(0.0, h - 2) * 10, hours=7)
    assert summary(out)[:2] == [("rate_of_rise", "active"), ("predicted_excursion", "active")]
    assert out[0].ts < 3 * HOUR
    assert "warming 10." in out[0].detail


STALE_OFFLINE = """
[p]
[[p.rules]]
name = "stale"
kind = "stale"
severity = "warning"
after_s = 60
[[p.rules]]
name = "offline"
kind = "offline"
severity = "warning"
after_s = 300
"""


def test_stale_data_while_online() -> None:
    """No reading for after_s while online raises stale, dated from the last reading; a reading clears it."""
    monitor = CrateMonitor("C-1", profile_of(STALE_OFFLINE))
    assert monitor.status(True, 0) == []
    monitor.feed(telemetry(0, 10_000, -190.0), 10_000)
    assert monitor.tick(69_999) == []
    (raised,) = monitor.tick(70_000)
    assert (raised.rule, raised.state, raised.started_ts, raised.sensor) == ("stale", "active", 10_000, "crate")
    assert monitor.tick(80_000) == []
    (cleared,) = monitor.feed(telemetry(1, 75_000, -190.0), 90_000)
    assert (cleared.state, cleared.ts) == ("cleared", 90_000)


def test_offline_crate_raises_offline_not_stale() -> None:
    """A crate offline (last will) for longer than after_s raises offline once; coming back clears it."""
    monitor = CrateMonitor("C-1", profile_of(STALE_OFFLINE))
    monitor.status(True, 0)
    monitor.feed(telemetry(0, 0, -190.0), 0)
    assert monitor.status(False, 30_000) == []
    assert monitor.tick(329_999) == []
    (raised,) = monitor.tick(330_000)
    assert (raised.rule, raised.state, raised.started_ts) == ("offline", "active", 30_000)
    assert monitor.tick(900_000) == []
    (cleared,) = monitor.status(True, 1_000_000)
    assert (cleared.rule, cleared.state) == ("offline", "cleared")


LID = """
[p]
[[p.rules]]
name = "lid_open"
kind = "lid"
severity = "warning"
after_s = 120
"""


def test_lid_open_too_long_in_event_time() -> None:
    """A lid open for longer than after_s raises when a later reading passes the limit, and clears on closing."""
    monitor = CrateMonitor("C-1", profile_of(LID))
    assert monitor.lid(True, 0) == []
    assert monitor.feed(telemetry(0, 119_000, -190.0), 119_000) == []
    (raised,) = monitor.feed(telemetry(1, 125_000, -190.0), 125_000)
    assert (raised.state, raised.ts, raised.started_ts) == ("active", 120_000, 0)
    (cleared,) = monitor.lid(False, 200_000)
    assert (cleared.state, cleared.ts) == ("cleared", 200_000)


def test_lid_left_open_raises_on_tick_but_not_during_a_backlog() -> None:
    """A tick raises a lid left open in the crate's estimated event time; a backlog replay is not judged by the wall."""
    live = CrateMonitor("C-1", profile_of(LID))
    live.feed(telemetry(0, 0, -190.0), 0)
    live.lid(True, 1000)
    assert live.tick(120_999) == []
    (raised,) = live.tick(121_000)
    assert (raised.state, raised.ts, raised.started_ts) == ("active", 121_000, 1000)
    backlog = CrateMonitor("C-1", profile_of(LID))
    backlog.feed(telemetry(0, 0, -190.0), 10 * HOUR)  # reading of t=0 arriving 10 h late
    backlog.lid(True, 1000)
    assert backlog.tick(10 * HOUR + 5000) == []


def test_lid_opening_seen_only_in_a_backlog_is_raised_with_true_times() -> None:
    """A long opening whose open and close arrive together yields active at open+after_s and cleared at close."""
    monitor = CrateMonitor("C-1", profile_of(LID))
    assert monitor.lid(True, 0) == []
    out = monitor.lid(False, 600_000)
    assert [(t.state, t.ts, t.started_ts) for t in out] == [("active", 120_000, 0), ("cleared", 600_000, 0)]


FAULT = """
[p]
[[p.rules]]
name = "sensor_fault"
kind = "sensor_fault"
severity = "critical"
delay_s = 120
clear_delay_s = 120
stuck_s = 1800
"""


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # a 1-minute OPEN is a glitch; a 3-minute one raises after delay_s, dated from its start
        ([(0, -190), (1, None), (2, -190), (10, None), (11, None), (12, None), (13, None)], [("active", 12, 10)]),
        # clearing needs clear_delay_s of good readings; a relapse restarts that
        (
            [(0, None), (2, None), (3, -190), (4, None), (5, -190), (6, -190), (7, -190)],
            [("active", 2, 0), ("cleared", 7, 0)],
        ),
        # the exact same value for 30 min is a stuck probe; jitter is not
        ([(m, -190.5) for m in range(0, 31, 5)], [("active", 30, 30)]),
        ([(m, -190.5 + (m % 2) * 0.01) for m in range(0, 60)], []),
    ],
)
def test_sensor_fault(samples: list[tuple[float, float | None]], expected: list[tuple[str, int, int]]) -> None:
    """OPEN/SHORT/RANGE readings and stuck values raise the fault rule after their delays."""
    out = _feed(CrateMonitor("C-1", profile_of(FAULT)), samples)
    assert [(state, ts, started) for _, state, ts, started in out] == expected


def test_threshold_state_survives_restore_mid_delay() -> None:
    """A breach pending its delay before a restart raises on time after it, dated from its true start."""
    refrigerated = shipped_profiles()["refrigerated"]
    first = CrateMonitor("C-1", refrigerated)
    _feed(first, [(0, 5.0), (1, 9.0), (8, 9.0)])
    second = CrateMonitor("C-1", refrigerated)
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert _feed(second, [(12, 9.0), (16, 9.0)]) == [("critical_high", "active", 16, 1)]


def test_out_of_order_reading_is_not_evaluated() -> None:
    """A reading older than one already evaluated is counted and skipped, never re-raising anything."""
    monitor = CrateMonitor("C-1", shipped_profiles()["cryo"])
    monitor.feed(telemetry(0, 10 * MIN, -190.0), 10 * MIN)
    assert monitor.feed(telemetry(1, 5 * MIN, -100.0), 10 * MIN) == []
    assert monitor.out_of_order == 1


def test_shipped_profiles_carry_the_rule_kinds() -> None:
    """refrigerated has delays, a start delay and a cumulative budget; cryo has rate-of-rise and prediction rules."""
    profiles = shipped_profiles()
    refrigerated = {r.kind for r in profiles["refrigerated"].extra_rules}
    assert {"cumulative", "stale", "offline", "lid", "sensor_fault"} <= refrigerated
    assert profiles["refrigerated"].start_delay_s > 0
    assert all(r.delay_s > 0 for r in profiles["refrigerated"].rules)
    assert {"rate_of_rise", "prediction"} <= {r.kind for r in profiles["cryo"].extra_rules}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('name="x"\nkind="cumulative"\nseverity="warning"\nbudget_s=60', "p.rules[0].high_c: a cumulative rule needs"),
        ('name="x"\nkind="cumulative"\nseverity="warning"\nbudget_s=60\nlow_c=8\nhigh_c=2', "p.rules[0].low_c"),
        ('name="x"\nkind="prediction"\nseverity="warning"\nhorizon_s=60', "p.rules[0].target_c: is required"),
        ('name="x"\nkind="rate_of_rise"\nseverity="warning"\nmax_rate_c_per_h=-1', "p.rules[0].max_rate_c_per_h"),
        ('name="x"\nkind="stale"\nseverity="warning"\nafter_s=60\nafter=5', "p.rules[0].after: is not a known"),
        ('name="x"\nkind="lid"\nseverity="loud"\nafter_s=60', "p.rules[0].severity"),
    ],
)
def test_bad_rule_names_file_and_key(rule: str, message: str) -> None:
    """A bad value in a new rule kind raises a ConfigError naming the file and the key."""
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        profile_of(f"[p]\n[[p.rules]]\n{rule}\n")
    assert str(caught.value).startswith("test.toml: ")
