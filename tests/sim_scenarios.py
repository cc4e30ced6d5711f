"""Run a scenario through the pure board and the core's ``CrateMonitor``, as the gateway would."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.transition import AlarmTransition
from coldchain.errors import SentenceError
from coldchain.position.geometry import Position
from coldchain.position.phases import Area, phase_of
from coldchain.profiles import Profile, parse_profiles
from coldchain.sentences import ClockSentence, LidSentence, TemperatureSentence, TiltSentence, parse_sentence
from coldchain.settings.table import Table
from coldchain.wire import Reading, Telemetry
from edge.probes.gps import GpsTracker
from edge.probes.nmea import read_nmea
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


CrateInput = tuple[str, int, Any]  # (kind, event time, what): what a crate's agent would publish, in order
GPS_REPORT_S = 600.0  # the agent's [gps] report_s the runs use


def crate_inputs(scenario: Scenario, seed: int = 1, outcome: Outcome | None = None) -> Iterator[CrateInput]:
    """What the crate's agent publishes from the scenario, in order: ``telemetry`` (one message per
    CCTIM-stamped tick), ``tick`` (the gateway's clock reaching a board time), ``lid`` (open or not),
    ``orientation``/``shock`` (through the agent's ``OrientationWatch``) and ``position``/``gps_no_fix``
    (the route's NMEA at each tick through the agent's ``GpsTracker``), each with the event's detail.
    ``outcome``, when given, counts the sentences (statuses, bad lines, faults, maxima)."""
    outcome = outcome if outcome is not None else Outcome()
    clock = EPOCH_MS
    seq = 0
    readings: list[Reading] = []
    watch = OrientationWatch("board")
    gps = GpsTracker("gps", GPS_REPORT_S)

    def flush() -> Iterator[CrateInput]:
        nonlocal seq
        if readings:
            yield "telemetry", clock, Telemetry(CRATE, seq, clock, tuple(readings))
            seq += 1
            readings.clear()

    for _, line in emit_until(scenario.board(seed, EPOCH_MS), scenario.duration_s):
        try:
            sentence = parse_sentence(line)
        except SentenceError:
            outcome.bad_lines += 1
            continue
        if isinstance(sentence, ClockSentence):
            yield from flush()
            clock = sentence.epoch_ms
            yield "tick", clock, None
            if scenario.route is not None:
                for nmea in scenario.route.nmea((clock - EPOCH_MS) / 1000, EPOCH_MS):
                    update = read_nmea(nmea)
                    for notice in gps.feed(update, clock, clock) if update is not None else []:
                        yield notice.event, clock, notice.detail
        elif isinstance(sentence, LidSentence):
            yield "lid", clock, sentence.state == "OPEN"
        elif isinstance(sentence, TiltSentence):
            for notice in watch.feed(sentence.tilt_deg, sentence.shock_g, clock, 0):
                yield notice.event, clock, notice.detail
        elif isinstance(sentence, TemperatureSentence):
            outcome.statuses[sentence.sensor, sentence.status] += 1
            if sentence.status == "OK":
                readings.append(Reading(sentence.sensor, round(sentence.celsius, 2)))
                previous = outcome.maximum_c.get(sentence.sensor, -300.0)
                outcome.maximum_c[sentence.sensor] = max(previous, sentence.celsius)
            else:
                readings.append(Reading(sentence.sensor, None, sentence.status))
                outcome.first_fault_ts.setdefault(sentence.sensor, clock)
    yield from flush()


def run(
    scenario: Scenario,
    seed: int = 1,
    profile: Profile | None = None,
    areas: tuple[Area | None, Area | None] = (None, None),
) -> Outcome:
    """Feed ``crate_inputs`` to a CrateMonitor as the gateway would (with ``profile`` instead of the scenario's,
    when given; ``areas``: the shipment's origin and destination geofences, which set its phase)."""
    monitor = CrateMonitor(CRATE, profile or profiles()[scenario.profile])
    monitor.switched_on(EPOCH_MS)
    outcome = Outcome()
    for kind, ts, what in crate_inputs(scenario, seed, outcome):
        if kind == "telemetry":
            outcome.transitions.extend(monitor.feed(what, ts))
        elif kind == "tick":
            outcome.transitions.extend(monitor.tick(ts))
        elif kind == "lid":
            outcome.transitions.extend(monitor.lid(what, ts))
        elif kind == "shock":
            outcome.transitions.extend(monitor.shock(what["shock_g"], what["tilt_deg"], ts))
        elif kind == "orientation":
            outcome.transitions.extend(monitor.orientation(what["tilt_deg"], ts))
        elif kind == "position":
            phase = phase_of(Position(what["lat"], what["lon"]), *areas)
            outcome.transitions.extend(monitor.enter_phase(phase, ts))
    return outcome
