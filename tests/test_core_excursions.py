"""Threshold excursion arithmetic, table-driven: readings in, transitions out."""

from __future__ import annotations

import pytest

from coldchain.alarms.threshold import ThresholdTracker
from coldchain.profiles import ThresholdRule

CRYO_CRITICAL = ThresholdRule("critical_high", "high", -150.0, "critical", hysteresis_c=2.0)
DELAYED_LOW = ThresholdRule("critical_low", "low", 2.0, "critical", delay_s=300, clear_delay_s=60, hysteresis_c=0.5)


def _run(rule: ThresholdRule, samples: list[tuple[int, float]]) -> list[tuple[str, int, int, int]]:
    """Feed (seconds, value) samples with seq = index; return (state, ts, seq, started_ts) per transition."""
    tracker = ThresholdTracker(rule, "probe1")
    out = []
    for seq, (seconds, value) in enumerate(samples):
        transition = tracker.feed(value, seconds * 1000, seq)
        if transition is not None:
            out.append((transition.state, transition.ts // 1000, transition.seq, transition.started_ts // 1000))
    return out


@pytest.mark.parametrize(
    ("rule", "samples", "expected"),
    [
        # steady cold: nothing
        (CRYO_CRITICAL, [(0, -185.0), (10, -184.0), (20, -150.0)], []),
        # crossing raises at once with the crossing reading's seq; equal to the limit is not a breach
        (CRYO_CRITICAL, [(0, -151.0), (10, -150.0), (20, -149.99), (30, -140.0)], [("active", 20, 2, 20)]),
        # clears only past the hysteresis band
        (
            CRYO_CRITICAL,
            [(0, -149.0), (10, -151.0), (20, -151.99), (30, -152.0), (40, -148.0)],
            [("active", 0, 0, 0), ("cleared", 30, 3, 0), ("active", 40, 4, 40)],
        ),
        # a delay: short dips never raise; a long one raises, dated from its true start
        (
            DELAYED_LOW,
            [(0, 1.0), (100, 5.0), (200, 1.5), (400, 1.5), (500, 1.9)],
            [("active", 500, 4, 200)],
        ),
        # clearing needs the recovery to hold for clear_delay_s; a relapse restarts it
        (
            DELAYED_LOW,
            [(0, 1.0), (300, 1.0), (310, 3.0), (330, 2.2), (340, 3.0), (399, 3.0), (400, 3.0)],
            [("active", 300, 1, 0), ("cleared", 400, 6, 0)],
        ),
    ],
)
def test_threshold_transitions(
    rule: ThresholdRule, samples: list[tuple[int, float]], expected: list[tuple[str, int, int, int]]
) -> None:
    """The tracker raises and clears exactly where the rule says."""
    assert _run(rule, samples) == expected
