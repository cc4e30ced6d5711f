"""The verdict in the core: holes of the record (gaps, silent stretches, probe faults, corrected times) and the
three-way ranking."""

from __future__ import annotations

import pytest

from coldchain.alarms.rules import CumulativeRule, StaleRule
from coldchain.profiles import Profile, ThresholdRule
from coldchain.record.completeness import (
    FAULT,
    GAP,
    STALE,
    TIME,
    Hole,
    fault_holes,
    gap_holes,
    silent_holes,
    stale_limit_ms,
    time_holes,
)
from coldchain.record.stats import BudgetUse, summarise
from coldchain.record.verdict import INCOMPLETE, REVIEW_REQUIRED, WITHIN_PROFILE, verdict

S, M = 1000, 60_000
CRYO = (
    ThresholdRule("warning_high", "high", -160.0, "warning"),
    ThresholdRule("critical_high", "high", -150.0, "critical"),
)
COLD = summarise("p", [(0, -170.0), (10 * S, -170.0)], CRYO, end_ms=10 * S + 1, max_hold_ms=M)
HOT = summarise("p", [(0, -148.0), (10 * S, -170.0)], CRYO, end_ms=10 * S + 1, max_hold_ms=M)
HOLE = Hole(GAP, "C-1", 9 * M, 45 * M, "seq 10..44 not all stored: 35 still awaited")
RESTAMPED = Hole(TIME, "C-1", 2 * M, 5 * M, "time corrected: 4 message(s) taken while the crate's clock was unset")
C, U = "ts_corrected", "ts_uncertain"
SPENT = BudgetUse(CumulativeRule("budget_spent", "critical", 10.0, 2.0, 8.0), 11 * S)
EVERY_MINUTE = [(i * M, i) for i in range(60)]
ONE_OPEN = "1 fault reading(s) (OPEN)"
WITHOUT_10_TO_44 = [m for m in EVERY_MINUTE if not 10 <= m[1] <= 44]


@pytest.mark.parametrize(
    ("summaries", "alarms", "budgets", "holes", "judged", "line"),
    [
        ([COLD], [], [], [], True, WITHIN_PROFILE),
        ([COLD], [], [], [HOLE], True, INCOMPLETE),
        ([COLD], [], [], [RESTAMPED], True, INCOMPLETE),
        ([HOT], [], [], [HOLE], True, REVIEW_REQUIRED),
        ([HOT], [], [], [RESTAMPED], True, REVIEW_REQUIRED),
        ([COLD], ["C-1/critical_high/p"], [], [HOLE], True, REVIEW_REQUIRED),
        ([COLD], [], [SPENT], [], True, REVIEW_REQUIRED),
        ([COLD], [], [], [HOLE], False, REVIEW_REQUIRED),
        ([], [], [], [], True, REVIEW_REQUIRED),
    ],
    ids=[
        "clean",
        "hole",
        "corrected-time",
        "excursion-outranks-hole",
        "excursion-outranks-corrected-time",
        "alarm",
        "budget",
        "unjudged",
        "no-readings",
    ],
)
def test_verdict_ranks_excursion_over_incomplete_over_clean(
    summaries: list, alarms: list[str], budgets: list, holes: list[Hole], judged: bool, line: str
) -> None:
    """Excursion outranks an incomplete record, which outranks within profile."""
    assert verdict(summaries, alarms, budgets, holes, judged=judged).line == line


def test_holes_are_listed_as_reasons_after_excursions_even_when_an_excursion_wins() -> None:
    """QA sees every hole with its start, end and duration, whichever line wins."""
    judged = verdict([HOT], holes=[HOLE])
    assert judged.holes == (HOLE,)
    assert judged.reasons[1] == (
        "C-1: seq 10..44 not all stored: 35 still awaited, 1970-01-01 00:09:00Z to 1970-01-01 00:45:00Z (36m00s)"
    )


@pytest.mark.parametrize(
    ("gaps", "messages", "spans"),
    [
        ([(45 * M, 10, 44, "open", 35, None)], WITHOUT_10_TO_44, [(9 * M, 45 * M, "35 still awaited")]),
        ([(45 * M, 10, 44, "lost", 0, 35)], WITHOUT_10_TO_44, [(9 * M, 45 * M, "35 lost for good")]),
        ([(45 * M, 10, 44, "closed", 0, None)], EVERY_MINUTE, []),
        ([(45 * M, 10, 44, "closed", 0, 3)], WITHOUT_10_TO_44, [(9 * M, 45 * M, "3 lost for good")]),
        ([(45 * M, 10, 44, "abandoned", 35, None)], WITHOUT_10_TO_44, [(9 * M, 45 * M, "35 still awaited")]),
        ([(45 * M, 10, 44, None, None, None)], WITHOUT_10_TO_44, [(9 * M, 45 * M, "35 still awaited")]),
        ([(5 * M, 0, 4, "open", 5, None)], [(i * M, i) for i in range(5, 10)], [(5 * M, 5 * M, "5 still awaited")]),
    ],
    ids=["open", "lost", "closed", "filled-but-partly-lost", "abandoned", "old-point-without-state", "first-seqs"],
)
def test_gap_holes_span_the_stored_messages_around_them(
    gaps: list, messages: list[tuple[int, int]], spans: list[tuple[int, int, str]]
) -> None:
    """An unfilled gap spans from the last stored message before it to the first after; a filled one is no hole."""
    holes = gap_holes("C-1", gaps, messages)
    assert [(h.start_ms, h.end_ms) for h in holes] == [s[:2] for s in spans]
    assert all(s[2] in h.detail for h, s in zip(holes, spans, strict=True))


@pytest.mark.parametrize(
    ("times", "limit", "explained", "spans"),
    [
        ([0, M, 2 * M, 3 * M], 2 * M, [], []),
        ([0, M, 4 * M + 41 * S, 5 * M], 2 * M, [], [(M, 4 * M + 41 * S)]),
        ([t for t, _ in WITHOUT_10_TO_44], 2 * M, [HOLE], []),
        ([0, 3 * M], 2 * M, [HOLE], [(0, 3 * M)]),
    ],
    ids=["steady", "3m41s-silence", "explained-by-gap", "not-covered-by-gap"],
)
def test_silent_holes_are_stretches_beyond_the_stale_limit(
    times: list[int], limit: int, explained: list[Hole], spans: list[tuple[int, int]]
) -> None:
    """Consecutive messages further apart than the limit make a stale hole unless a gap explains it."""
    holes = silent_holes("C-1", times, limit, explained)
    assert [(h.kind, h.start_ms, h.end_ms) for h in holes] == [(STALE, lo, hi) for lo, hi in spans]


@pytest.mark.parametrize(
    ("samples", "found"),
    [
        ([(0, None), (S, None)], []),
        ([(0, None), (S, "OPEN"), (2 * S, "OPEN"), (3 * S, None)], [(S, 3 * S, "2 fault reading(s) (OPEN)")]),
        ([(0, "SHORT"), (S, "RANGE")], [(0, S, "2 fault reading(s) (RANGE, SHORT)")]),
        (
            [(0, "OPEN"), (S, None), (2 * S, "OPEN")],
            [(0, S, "1 fault reading(s) (OPEN)"), (2 * S, 2 * S, "1 fault reading(s) (OPEN)")],
        ),
    ],
    ids=["none", "run-until-good", "run-to-the-end", "two-runs"],
)
def test_fault_holes_run_until_the_next_good_reading(
    samples: list[tuple[int, str | None]], found: list[tuple[int, int, str]]
) -> None:
    """Each run of fault readings is one hole, ending at the probe's next good reading."""
    holes = fault_holes("probe2", samples)
    assert [(h.kind, h.start_ms, h.end_ms, h.detail.split(":")[0]) for h in holes] == [(FAULT, *f) for f in found]


@pytest.mark.parametrize(
    ("messages", "found"),
    [
        ([(0, None), (M, None)], []),
        ([(0, None), (M, C), (2 * M, C), (3 * M, C), (4 * M, None)], [(M, 3 * M, "time corrected: 3 message(s)")]),
        ([(0, U), (M, U), (2 * M, None)], [(0, M, "time uncertain: 2 message(s)")]),
        ([(0, C)], [(0, 0, "time corrected: 1 message(s)")]),
        (
            [(0, U), (M, C), (2 * M, C), (3 * M, None), (4 * M, C)],
            [(0, 0, "time uncertain: 1"), (M, 2 * M, "time corrected: 2"), (4 * M, 4 * M, "time corrected: 1")],
        ),
    ],
    ids=["none", "corrected-run", "uncertain-run-from-the-start", "one-to-the-end", "runs-split-by-flag-and-by-good"],
)
def test_time_holes_are_runs_of_messages_with_the_same_flag(
    messages: list[tuple[int, str | None]], found: list[tuple[int, int, str]]
) -> None:
    """Each run of a crate's corrected (or uncertain) messages is one hole, from its first message to its last."""
    holes = time_holes("C-1", messages)
    assert [(h.kind, h.where, h.start_ms, h.end_ms) for h in holes] == [(TIME, "C-1", *f[:2]) for f in found]
    assert all(h.detail.startswith(f[2]) for h, f in zip(holes, found, strict=True))


def test_a_corrected_time_is_listed_with_start_end_and_duration() -> None:
    """The verdict's reasons name the run, its span and its duration, so QA sees why the record is incomplete."""
    (hole,) = time_holes("C-1", [(2 * M, C), (3 * M, C), (5 * M, C)])
    judged = verdict([COLD], holes=[hole])
    assert (judged.line, judged.holes) == (INCOMPLETE, (hole,))
    assert judged.reasons == (
        "C-1: time corrected: 3 message(s) taken while the crate's clock was unset, restamped from its monotonic clock "
        "(right to within that clock's drift), 1970-01-01 00:02:00Z to 1970-01-01 00:05:00Z (3m00s)",
    )


def test_stale_limit_is_the_profiles_tightest_stale_rule() -> None:
    """The stale limit comes from the profile's stale rules; none, no limit."""
    profile = Profile("x", "", CRYO, (StaleRule("stale", "warning", 300.0), StaleRule("stale2", "critical", 120.0)))
    assert stale_limit_ms(profile) == 120 * S
    assert stale_limit_ms(Profile("y", "", CRYO)) is None
    assert stale_limit_ms(None) is None
