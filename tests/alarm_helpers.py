"""Helpers for the alarm tests: shipped profiles, telemetry builders and scenario traces."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable
from pathlib import Path

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.transition import AlarmTransition
from coldchain.profiles import Profile, parse_profiles
from coldchain.settings.table import Table
from coldchain.wire import Reading, Telemetry

PROFILES_TOML = Path(__file__).resolve().parent.parent / "config" / "profiles.toml"
MIN = 60_000
HOUR = 3_600_000


def shipped_profiles() -> dict[str, Profile]:
    """The profiles of config/profiles.toml."""
    return parse_profiles(Table(tomllib.loads(PROFILES_TOML.read_text()), str(PROFILES_TOML)))


def profile_of(text: str, name: str = "p") -> Profile:
    """A profile from a TOML snippet."""
    return parse_profiles(Table(tomllib.loads(text), "test.toml"))[name]


def telemetry(seq: int, ts: int, value: float | None, fault: str | None = None, sensor: str = "probe1") -> Telemetry:
    """One crate message with one reading."""
    return Telemetry("C-1", seq, ts, (Reading(sensor, value, fault),))


def run_trace(
    monitor: CrateMonitor, trace: Callable[[float], float], hours: float, period_s: int = 60, noise: float = 0.3
) -> list[AlarmTransition]:
    """Feed a temperature trace (°C as a function of hours) with seeded noise; arrival == event time."""
    rnd = random.Random(7)
    out: list[AlarmTransition] = []
    for i in range(int(hours * 3600 / period_s)):
        ts = i * period_s * 1000
        value = round(trace(ts / HOUR) + rnd.uniform(-noise, noise), 2)
        out += monitor.feed(telemetry(i, ts, value), ts)
    return out


def summary(transitions: list[AlarmTransition]) -> list[tuple[str, str]]:
    """(rule, state) of each transition, in order."""
    return [(t.rule, t.state) for t in transitions]


def ln2_running_out(hours: float) -> float:
    """A dry shipper at -190 °C whose nitrogen is gone after 4 h: warms slowly at first, then faster."""
    if hours < 4:
        return -190.0
    x = hours - 4
    return -190.0 + 0.6 * x + 0.04 * x * x


def lid_spikes(hours: float) -> float:
    """-190 °C, with a 1-minute lid opening every 5 h: +25 °C, relaxing with a 3-minute time constant."""
    for start in (5.0, 10.0, 15.0, 20.0):
        x = hours - start
        if 0 <= x < 0.02:
            return -190.0 + 25 * x / 0.02
        if 0.02 <= x < 0.5:
            return -190.0 + 25 * 2.718281828 ** (-(x - 0.02) / 0.05)
    return -190.0
