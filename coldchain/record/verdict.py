"""The release verdict: excursion outranks an incomplete record, which outranks "within profile".

``excursion: review required``: a critical limit breached for at least its delay, a critical
alarm in the record, a critical budget exceeded, no readings at all, or readings no profile
judged. ``incomplete record: review required``: none of those, but the record has holes
(``coldchain.record.completeness``): nothing shows what the product went through there.
``within profile``: neither. Warning-level excursions are reported but do not decide: they are
early warnings, not the product's limits. The reasons list everything found, holes included,
whichever line wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from coldchain.record.completeness import Hole
from coldchain.record.stats import BudgetUse, SensorSummary, format_duration

__all__ = ["INCOMPLETE", "REVIEW_REQUIRED", "VERDICTS", "WITHIN_PROFILE", "Verdict", "verdict"]

WITHIN_PROFILE: Final = "within profile"
REVIEW_REQUIRED: Final = "excursion: review required"
INCOMPLETE: Final = "incomplete record: review required"
VERDICTS: Final = (WITHIN_PROFILE, INCOMPLETE, REVIEW_REQUIRED)  # in rising order of concern
UNJUDGED: Final = "no product profile (stored or --profile): the readings were not judged against limits"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The release verdict, what it rests on, and the holes of the record (listed in ``reasons`` too)."""

    line: str  # one of VERDICTS
    reasons: tuple[str, ...]
    holes: tuple[Hole, ...] = ()

    @property
    def within_profile(self) -> bool:
        """True when nothing calls for a review."""
        return self.line == WITHIN_PROFILE


def _excursions(
    summaries: Sequence[SensorSummary], critical_alarms: Sequence[str], budgets: Sequence[BudgetUse], judged: bool
) -> list[str]:
    reasons = [] if judged or not summaries else [UNJUDGED]
    for summary in summaries:
        for rule, excursion in summary.excursions:
            if rule.severity == "critical":
                reasons.append(
                    f"{summary.sensor}: {rule.name} ({rule.kind} {rule.threshold_c:g} °C) breached for "
                    f"{format_duration(excursion.duration_ms)}, peak {excursion.peak_c:.2f} °C"
                )
    reasons += [f"critical alarm {name}" for name in critical_alarms]
    for use in budgets:
        if use.exceeded and use.rule.severity == "critical":
            reasons.append(
                f"{use.rule.name}: {format_duration(use.used_ms)} out of range "
                f"exceeds the budget of {format_duration(int(use.rule.budget_s * 1000))}"
            )
    if not summaries:
        reasons.append("no readings: nothing shows the product stayed within its limits")
    return reasons


def verdict(
    summaries: Sequence[SensorSummary],
    critical_alarms: Sequence[str] = (),
    budgets: Sequence[BudgetUse] = (),
    holes: Sequence[Hole] = (),
    *,
    judged: bool = True,
) -> Verdict:
    """Judge a record: ``judged`` False when no profile gave limits to judge the readings by."""
    excursions = _excursions(summaries, critical_alarms, budgets, judged)
    ordered = tuple(sorted(holes, key=lambda h: (h.start_ms, h.where, h.kind)))
    line = REVIEW_REQUIRED if excursions else INCOMPLETE if ordered else WITHIN_PROFILE
    return Verdict(line, (*excursions, *(h.describe() for h in ordered)), ordered)
