"""A record of readings against a product profile: statistics, excursions, budget (verdict: coldchain.record.verdict).

Time follows ``coldchain.record.out_of_range`` (sample and hold, never longer than
``max_hold_ms``; unknown time is not counted) and MKT is ``coldchain.record.mkt``'s,
time-weighted. An excursion of a threshold rule is a continuous breach that lasted
at least the rule's ``delay_s``: a shorter breach is tolerated by design (a door
opening), but its time still counts as out of range and against a budget.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from coldchain.alarms.rules import CumulativeRule
from coldchain.profiles import Profile, ThresholdRule
from coldchain.record.mkt import mean_kinetic_temperature_c
from coldchain.record.out_of_range import held_intervals, out_of_range_intervals, time_out_of_range_ms, total_ms

__all__ = [
    "BudgetUse",
    "Excursion",
    "RuleExposure",
    "SensorSummary",
    "budget_use",
    "default_max_hold_ms",
    "format_duration",
    "product_limits",
    "summarise",
]

MIN_HOLD_MS: Final = 60_000
HOLD_PERIODS: Final = 3  # a reading may stand for up to this many typical sampling periods

Sample = tuple[int, float]  # (epoch ms, °C)


@dataclass(frozen=True, slots=True)
class Excursion:
    """A continuous breach of one rule, [start_ms, end_ms), and the value furthest beyond the limit."""

    start_ms: int
    end_ms: int
    peak_c: float

    @property
    def duration_ms(self) -> int:
        """How long the breach lasted."""
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class RuleExposure:
    """How long a probe spent beyond one threshold rule's limit, and the breaches long enough to count."""

    rule: ThresholdRule
    out_of_range_ms: int
    excursions: tuple[Excursion, ...]


@dataclass(frozen=True, slots=True)
class SensorSummary:
    """Statistics of one probe over a window."""

    sensor: str
    count: int
    first_ms: int
    last_ms: int
    min_c: float
    max_c: float
    mean_c: float
    mkt_c: float
    out_of_range_ms: int  # outside the product's limits (its critical thresholds)
    rules: tuple[RuleExposure, ...]

    @property
    def excursions(self) -> tuple[tuple[ThresholdRule, Excursion], ...]:
        """Every excursion of every rule, in time order."""
        pairs = [(r.rule, e) for r in self.rules for e in r.excursions]
        return tuple(sorted(pairs, key=lambda p: (p[1].start_ms, p[0].name)))


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A cumulative rule's budget against the crate's time outside its range (any probe counts)."""

    rule: CumulativeRule
    used_ms: int

    @property
    def exceeded(self) -> bool:
        """True once more time was spent outside the range than the budget allows."""
        return self.used_ms > self.rule.budget_s * 1000


def format_duration(ms: int) -> str:
    """A readable duration: ``0s``, ``45s``, ``12m30s``, ``3h05m``, ``2d04h``."""
    seconds = round(ms / 1000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def default_max_hold_ms(samples: Sequence[Sample]) -> int:
    """How long a reading may stand for: a few typical sampling periods, at least a minute."""
    steps = [b[0] - a[0] for a, b in itertools.pairwise(samples) if b[0] > a[0]]
    if not steps:
        return MIN_HOLD_MS
    return max(MIN_HOLD_MS, HOLD_PERIODS * int(statistics.median(steps)))


def product_limits(rules: Sequence[ThresholdRule]) -> tuple[float | None, float | None]:
    """The product's own range: the tightest critical low and high thresholds (None: no such side)."""
    lows = [r.threshold_c for r in rules if r.severity == "critical" and r.kind == "low"]
    highs = [r.threshold_c for r in rules if r.severity == "critical" and r.kind == "high"]
    return (max(lows) if lows else None, min(highs) if highs else None)


def _bounds(rule: ThresholdRule) -> tuple[float | None, float | None]:
    return (rule.threshold_c, None) if rule.kind == "low" else (None, rule.threshold_c)


def _exposure(samples: Sequence[Sample], rule: ThresholdRule, end_ms: int, max_hold_ms: int) -> RuleExposure:
    low, high = _bounds(rule)
    spans = out_of_range_intervals(samples, low, high, samples[0][0], end_ms, max_hold_ms=max_hold_ms)
    excursions = []
    for lo, hi in spans:
        inside = [v for ts, v in samples if lo <= ts < hi]
        peak = max(inside) if rule.kind == "high" else min(inside)
        if hi - lo >= rule.delay_s * 1000:
            excursions.append(Excursion(lo, hi, peak))
    return RuleExposure(rule, total_ms(spans), tuple(excursions))


def summarise(
    sensor: str, samples: Sequence[Sample], rules: Sequence[ThresholdRule], end_ms: int, max_hold_ms: int
) -> SensorSummary:
    """Min/max/mean/MKT, time outside the product's limits and each rule's excursions, for one probe.

    ``samples`` are sorted by time; the last one holds until ``end_ms`` (the window's end) at most.
    """
    if not samples:
        raise ValueError(f"no readings for sensor {sensor!r}")
    values = [v for _, v in samples]
    held = held_intervals(samples, samples[0][0], end_ms, max_hold_ms)
    weights = [hi - lo for lo, hi, _ in held]
    mkt = (
        mean_kinetic_temperature_c([v for _, _, v in held], weights)
        if sum(weights) > 0
        else mean_kinetic_temperature_c(values)
    )
    low, high = product_limits(rules)
    outside = out_of_range_intervals(samples, low, high, samples[0][0], end_ms, max_hold_ms=max_hold_ms)
    return SensorSummary(
        sensor=sensor,
        count=len(samples),
        first_ms=samples[0][0],
        last_ms=samples[-1][0],
        min_c=min(values),
        max_c=max(values),
        mean_c=statistics.fmean(values),
        mkt_c=mkt,
        out_of_range_ms=total_ms(outside) if (low is not None or high is not None) else 0,
        rules=tuple(_exposure(samples, rule, end_ms, max_hold_ms) for rule in rules),
    )


def budget_use(profile: Profile, series: Mapping[str, Sequence[Sample]], start_ms: int, end_ms: int) -> list[BudgetUse]:
    """Each cumulative rule of the profile against the time the crate (any probe) spent outside its range."""
    return [
        BudgetUse(
            rule,
            time_out_of_range_ms(
                series.values(), rule.low_c, rule.high_c, start_ms, end_ms, max_hold_ms=int(rule.max_hold_s * 1000)
            ),
        )
        for rule in profile.extra_rules
        if isinstance(rule, CumulativeRule)
    ]
