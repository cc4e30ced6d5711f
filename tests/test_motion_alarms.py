"""Tilt and shock rules on orientation and shock events in event-time order: what raises, when, and what not."""

from __future__ import annotations

import pytest
from alarm_helpers import profile_of, shipped_profiles, telemetry

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.engine import AlarmEngine
from coldchain.errors import ConfigError

MIN = 60_000
MOTION = """
[p]
[[p.rules]]
name = "tipped"
kind = "tilt"
severity = "warning"
limit_deg = 30.0
delay_s = 600
hysteresis_deg = 5.0
[[p.rules]]
name = "dropped"
kind = "shock"
severity = "warning"
limit_g = 3.0
"""

# (tilt events as (minute, degrees), minute event time reaches) -> (rule, state, ts min, started min) per transition
TILTS = [
    ([(0, 0.0), (60, 88.5)], 69, []),  # 9 min on its side: not yet
    ([(0, 0.0), (60, 88.5)], 70, [("tipped", "active", 70, 60)]),  # dated from the tip, raised after the delay
    ([(60, 88.5)], 300, [("tipped", "active", 70, 60)]),  # once, however long it lies there
    ([(60, 88.5), (65, 40.0), (80, 0.0)], 90, [("tipped", "active", 70, 60), ("tipped", "cleared", 80, 60)]),
    ([(60, 88.5), (75, 27.0)], 120, [("tipped", "active", 70, 60)]),  # within the hysteresis: holds
    ([(60, 88.5), (75, 24.0)], 120, [("tipped", "active", 70, 60), ("tipped", "cleared", 75, 60)]),
    ([(60, 40.0), (65, 28.0), (66, 40.0)], 75, []),  # back under the limit before the delay: starts afresh
    ([(60, 40.0), (65, 28.0), (66, 40.0)], 76, [("tipped", "active", 76, 66)]),
    ([(60, 30.0)], 120, []),  # at the limit is not beyond it
    ([(60, 20.0), (70, 15.0)], 120, []),  # a ramp or a hand truck
]


def _summary(transitions: list) -> list[tuple[str, str, int, int]]:  # type: ignore[type-arg]
    return [(t.rule, t.state, t.ts // MIN, t.started_ts // MIN) for t in transitions]


@pytest.mark.parametrize(("tilts", "until_min", "expected"), TILTS)
def test_tilt_beyond_limit_for_the_delay_raises_once_with_its_start(
    tilts: list[tuple[int, float]], until_min: int, expected: list[tuple[str, str, int, int]]
) -> None:
    """A tilt over limit_deg for delay_s raises once, dated from when it went over; it clears below the hysteresis."""
    monitor = CrateMonitor("C-1", profile_of(MOTION))
    out = []
    for minute, degrees in tilts:
        out += monitor.orientation(degrees, minute * MIN)
    out += monitor.feed(telemetry(0, until_min * MIN, -190.0), until_min * MIN)
    assert _summary(out) == expected


@pytest.mark.parametrize(
    ("shock_g", "expected"),
    [(2.5, []), (3.0, []), (3.5, [("dropped", "active", 60, 60), ("dropped", "cleared", 61, 60)])],
)
def test_shock_above_limit_raises_at_its_time_and_clears_with_the_next_reading(
    shock_g: float, expected: list[tuple[str, str, int, int]]
) -> None:
    """A shock over limit_g raises at the shock's own time and clears with a later reading; one at or under it
    raises nothing."""
    monitor = CrateMonitor("C-1", profile_of(MOTION))
    out = monitor.feed(telemetry(0, 60 * MIN, -190.0), 60 * MIN)  # the reading of the shock's own tick
    out += monitor.shock(shock_g, 0.0, 60 * MIN)
    out += monitor.feed(telemetry(1, 60 * MIN, -190.0), 60 * MIN)
    out += monitor.feed(telemetry(2, 61 * MIN, -190.0), 61 * MIN)
    assert _summary(out) == expected


def test_tilt_delay_runs_on_the_crates_event_time_at_ticks() -> None:
    """A crate tipped and then silent of tilts raises at a tick once its event time passes the delay."""
    engine = AlarmEngine({"p": profile_of(MOTION)}, "p")
    engine.telemetry(telemetry(0, 60 * MIN, -190.0), 60 * MIN)
    assert engine.shock("C-1", 3.5, 88.5, 60 * MIN, 60 * MIN)[0].alarm.kind == "shock"
    assert engine.tick(69 * MIN) == []
    (raised,) = engine.tick(70 * MIN)
    assert (raised.alarm.rule, raised.alarm.started_ts, raised.ts) == ("tipped", 60 * MIN, 70 * MIN)
    assert engine.tick(80 * MIN) == []


def test_pending_tilt_survives_a_restart() -> None:
    """A gateway restarted mid-delay raises the tilt alarm with its true start."""
    engine = AlarmEngine({"p": profile_of(MOTION)}, "p")
    engine.orientation("C-1", 88.5, 60 * MIN, 60 * MIN)
    restarted = AlarmEngine({"p": profile_of(MOTION)}, "p")
    restarted.restore(engine.snapshot(), 61 * MIN)
    (raised,) = restarted.telemetry(telemetry(0, 71 * MIN, -190.0), 71 * MIN)
    assert (raised.alarm.rule, raised.alarm.started_ts) == ("tipped", 60 * MIN)


def test_cryo_profile_watches_tilt_by_default() -> None:
    """The shipped cryo profile: tilt beyond 30° for 10 min, shocks over 3 g."""
    kinds = {r.kind: r for r in shipped_profiles()["cryo"].extra_rules}
    assert (kinds["tilt"].limit_deg, kinds["tilt"].delay_s, kinds["shock"].limit_g) == (30.0, 600.0, 3.0)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('kind = "tilt"\nlimit_deg = 181.0', "limit_deg"),
        ('kind = "tilt"\nlimit_deg = 4.0', "hysteresis_deg"),
        ('kind = "tilt"', "limit_deg"),
        ('kind = "shock"\nlimit_g = -1.0', "limit_g"),
        ('kind = "shock"', "limit_g"),
    ],
)
def test_bad_motion_rule_is_refused_naming_the_key(rule: str, message: str) -> None:
    """A tilt or shock rule with a missing or impossible limit: a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=message):
        profile_of(f'[p]\n[[p.rules]]\nname = "r"\nseverity = "warning"\n{rule}\n')
