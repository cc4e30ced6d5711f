"""Product profiles: which temperatures a kind of product tolerates, as a set of rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coldchain.alarms.rules import EXTRA_KINDS, ExtraRule, parse_extra_rule
from coldchain.settings.table import Table, load_toml
from coldchain.topics import IDENTIFIER_RULE, valid_identifier
from coldchain.wire.alarms import SEVERITIES

__all__ = ["SEVERITIES", "Profile", "ThresholdRule", "load_profiles", "parse_profiles"]

THRESHOLD_KINDS: Final = ("high", "low")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Raise when a probe is above (``high``) or below (``low``) a limit.

    ``delay_s``: the condition must persist this long before the alarm is raised
    (a single-event rule). ``hysteresis_c``: the value must come back this far
    inside the limit to count as recovered; ``clear_delay_s``: and stay there this long.
    """

    name: str
    kind: str
    threshold_c: float
    severity: str
    delay_s: float = 0.0
    hysteresis_c: float = 0.0
    clear_delay_s: float = 0.0

    def breached(self, value_c: float) -> bool:
        """True while ``value_c`` is outside the limit."""
        return value_c > self.threshold_c if self.kind == "high" else value_c < self.threshold_c

    def recovered(self, value_c: float) -> bool:
        """True when ``value_c`` is back inside the limit by at least the hysteresis."""
        if self.kind == "high":
            return value_c <= self.threshold_c - self.hysteresis_c
        return value_c >= self.threshold_c + self.hysteresis_c


@dataclass(frozen=True, slots=True)
class Profile:
    """A named product profile (``cryo``, ``dry_ice``, ``refrigerated``...).

    ``rules`` holds the threshold rules (what ``ThresholdTracker`` evaluates);
    ``extra_rules`` the other kinds of ``coldchain.alarms.rules``. ``start_delay_s``:
    after a crate is switched on, its probes settle this long before value rules apply.
    """

    name: str
    description: str
    rules: tuple[ThresholdRule, ...]
    extra_rules: tuple[ExtraRule, ...] = ()
    start_delay_s: float = 0.0


def _rule(table: Table) -> ThresholdRule | ExtraRule:
    kind = table.text("kind", choices=THRESHOLD_KINDS + EXTRA_KINDS)
    if kind in EXTRA_KINDS:
        return parse_extra_rule(table, kind)
    if "phases" in table:
        raise table.error("phases", "only tilt and shock rules take phases")
    return ThresholdRule(
        name=table.identifier("name"),
        kind=kind,
        threshold_c=table.number("threshold_c", minimum=-273.15, maximum=200.0),
        severity=table.text("severity", choices=SEVERITIES),
        delay_s=table.number("delay_s", 0.0, minimum=0.0),
        hysteresis_c=table.number("hysteresis_c", 0.0, minimum=0.0),
        clear_delay_s=table.number("clear_delay_s", 0.0, minimum=0.0),
    )


def parse_profiles(root: Table) -> dict[str, Profile]:
    """Every ``[name]`` table of a profiles file, each with its ``[[name.rules]]``."""
    profiles: dict[str, Profile] = {}
    for name in list(root.keys()):
        table = root.table(name, required=True)
        if not valid_identifier(name):
            raise root.error(name, f"profile names must be {IDENTIFIER_RULE}")
        parsed = [_rule(t) for t in table.tables("rules")]
        names = [r.name for r in parsed]
        if len(set(names)) != len(names):
            raise table.error("rules", f"rule names must be unique within a profile, got {names}")
        if not parsed:
            raise table.error("rules", "a profile needs at least one rule")
        profiles[name] = Profile(
            name,
            table.text("description", ""),
            tuple(r for r in parsed if isinstance(r, ThresholdRule)),
            tuple(r for r in parsed if not isinstance(r, ThresholdRule)),
            table.number("start_delay_s", 0.0, minimum=0.0),
        )
    root.finish()
    return profiles


def load_profiles(path: Path) -> dict[str, Profile]:
    """Read and check a profiles file (ConfigError naming file, key and problem)."""
    return parse_profiles(load_toml(path))
