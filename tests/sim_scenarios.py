"""Run a scenario through the pure board and the core's excursion trackers, as the gateway would."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from coldchain.errors import SentenceError
from coldchain.excursions import ThresholdTracker, Transition
from coldchain.profiles import Profile, parse_profiles
from coldchain.sentences import ClockSentence, TemperatureSentence, parse_sentence
from coldchain.settings import Table
from firmware_sim.board import emit_until
from firmware_sim.scenario import Scenario, parse_scenario

CONFIG = Path(__file__).resolve().parent.parent / "config"
EPOCH_MS = 1_764_086_400_000  # 2025-11-25T16:00Z


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

    transitions: list[Transition] = field(default_factory=list)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (sensor, status) -> count
    bad_lines: int = 0
    first_fault_ts: dict[str, int] = field(default_factory=dict)
    maximum_c: dict[str, float] = field(default_factory=dict)

    def raised(self) -> list[tuple[str, str, str]]:
        """(rule, sensor, state) of every transition, in order."""
        return [(t.rule.name, t.sensor, t.state) for t in self.transitions]


def run(scenario: Scenario, seed: int = 1) -> Outcome:
    """Feed every CCTMP of the scenario, stamped with its CCTIM, through a tracker per rule and sensor."""
    rules = profiles()[scenario.profile].rules
    trackers = {(r.name, p.name): ThresholdTracker(r, p.name) for r in rules for p in scenario.probes}
    outcome = Outcome()
    clock = EPOCH_MS
    seq = 0
    for _, line in emit_until(scenario.board(seed, EPOCH_MS), scenario.duration_s):
        try:
            sentence = parse_sentence(line)
        except SentenceError:
            outcome.bad_lines += 1
            continue
        if isinstance(sentence, ClockSentence):
            clock = sentence.epoch_ms
            seq += 1
        elif isinstance(sentence, TemperatureSentence):
            outcome.statuses[sentence.sensor, sentence.status] += 1
            if sentence.status != "OK":
                outcome.first_fault_ts.setdefault(sentence.sensor, clock)
                continue
            previous = outcome.maximum_c.get(sentence.sensor, -300.0)
            outcome.maximum_c[sentence.sensor] = max(previous, sentence.celsius)
            for (_, sensor), tracker in trackers.items():
                if sensor == sentence.sensor:
                    transition = tracker.feed(sentence.celsius, clock, seq)
                    if transition is not None:
                        outcome.transitions.append(transition)
    return outcome
