"""Run a scenario through the pure board and the core's ``CrateMonitor``, as the gateway would."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.transition import AlarmTransition
from coldchain.errors import SentenceError
from coldchain.profiles import Profile, parse_profiles
from coldchain.sentences import ClockSentence, LidSentence, TemperatureSentence, TiltSentence, parse_sentence
from coldchain.settings.table import Table
from coldchain.wire import Reading, Telemetry
from edge.probes.orientation import OrientationWatch
from firmware_sim.board import emit_until
from firmware_sim.scenario import Scenario, parse_scenario

CONFIG = Path(__file__).resolve().parent.parent / "config"
EPOCH_MS = 1_764_086_400_000  # 2025-11-25T16:00Z
CRATE = "SIM-1"


def profiles() -> dict[str, Profile]:
    """The shipped product profiles."""
    return parse_profiles(Table(tomllib.loads((CONFIG / "profiles.toml").read_text()), "profiles.toml"))


def load(name: str) -> Scenario:
    """A shipped scenario by file stem."""
    path = CONFIG / "scenarios" / f"{name}.toml"
    return parse_scenario(tomllib.loads(path.read_text()), path.name, profiles())


@dataclass
class Outcome:
    """What the monitoring side would have seen from a scenario run."""

    transitions: list[AlarmTransition] = field(default_factory=list)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (sensor, status) -> count
    bad_lines: int = 0
    first_fault_ts: dict[str, int] = field(default_factory=dict)
    maximum_c: dict[str, float] = field(default_factory=dict)

    def raised(self, *rules: str) -> list[tuple[str, str, str]]:
        """(rule, sensor, state) of every transition of ``rules`` (all rules when none given), in order."""
        return [(t.rule, t.sensor, t.state) for t in self.transitions if not rules or t.rule in rules]

    def active_rules(self) -> set[str]:
        """Names of the rules that raised an alarm at least once."""
        return {t.rule for t in self.transitions if t.state == "active"}

    def first(self, rule: str) -> AlarmTransition:
        """The first transition of ``rule``."""
        return next(t for t in self.transitions if t.rule == rule)


def run(scenario: Scenario, seed: int = 1) -> Outcome:
    """Feed the scenario's sentences, one telemetry message per CCTIM-stamped tick, to a CrateMonitor.

    Tilts go through the agent's own ``OrientationWatch``: only what it would publish reaches the monitor.
    """
    monitor = CrateMonitor(CRATE, profiles()[scenario.profile])
    monitor.switched_on(EPOCH_MS)
    outcome = Outcome()
    clock = EPOCH_MS
    seq = 0
    readings: list[Reading] = []
    watch = OrientationWatch("board")

    def send_tick() -> None:
        nonlocal seq
        if readings:
            outcome.transitions.extend(monitor.feed(Telemetry(CRATE, seq, clock, tuple(readings)), clock))
            seq += 1
            readings.clear()

    for _, line in emit_until(scenario.board(seed, EPOCH_MS), scenario.duration_s):
        try:
            sentence = parse_sentence(line)
        except SentenceError:
            outcome.bad_lines += 1
            continue
        if isinstance(sentence, ClockSentence):
            send_tick()
            clock = sentence.epoch_ms
            outcome.transitions.extend(monitor.tick(clock))
        elif isinstance(sentence, LidSentence):
            outcome.transitions.extend(monitor.lid(sentence.state == "OPEN", clock))
        elif isinstance(sentence, TiltSentence):
            for notice in watch.feed(sentence.tilt_deg, sentence.shock_g, clock, 0):
                if notice.event == "shock":
                    shock = monitor.shock(notice.detail["shock_g"], notice.detail["tilt_deg"], clock)
                    outcome.transitions.extend(shock)
                else:
                    outcome.transitions.extend(monitor.orientation(notice.detail["tilt_deg"], clock))
        elif isinstance(sentence, TemperatureSentence):
            outcome.statuses[sentence.sensor, sentence.status] += 1
            if sentence.status == "OK":
                readings.append(Reading(sentence.sensor, round(sentence.celsius, 2)))
                previous = outcome.maximum_c.get(sentence.sensor, -300.0)
                outcome.maximum_c[sentence.sensor] = max(previous, sentence.celsius)
            else:
                readings.append(Reading(sentence.sensor, None, sentence.status))
                outcome.first_fault_ts.setdefault(sentence.sensor, clock)
    send_tick()
    return outcome
