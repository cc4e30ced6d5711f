"""Mean kinetic temperature and time out of range against hand-computed values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.alarms.evaluators import CumulativeEvaluator
from coldchain.alarms.rules import CumulativeRule
from coldchain.record.mkt import mean_kinetic_temperature_c
from coldchain.record.out_of_range import held_intervals, time_out_of_range_ms

MIN = 60_000


# Hand computation: ΔH/R = 83144 / 8.3144 = 10000 K, so MKT = 10000 / -ln(Σ w·exp(-10000/T) / Σ w).
@pytest.mark.parametrize(
    ("values", "weights", "expected"),
    [
        # a constant temperature is its own MKT
        ([25.0, 25.0, 25.0], None, 25.0),
        # 20 and 30 °C for equal times: 10000/293.15 = 34.112229, 10000/303.15 = 32.986970;
        # mean = exp(-32.986970)·(1 + exp(-1.125259))/2 = exp(-32.986970)·(1 + 0.324568)/2
        # -ln(mean) = 32.986970 - ln(0.662284) = 32.986970 + 0.412061 = 33.399031
        # MKT = 10000 / 33.399031 = 299.4099 K = 26.2599 °C (the warm half dominates)
        ([20.0, 30.0], None, 26.2599),
        # 5 °C for 3 h, 25 °C for 1 h: 10000/278.15 = 35.951825, 10000/298.15 = 33.540164;
        # mean = exp(-33.540164)·(3·exp(-2.411660) + 1)/4 = exp(-33.540164)·(3·0.089666 + 1)/4 = ·0.317250
        # -ln(mean) = 33.540164 + 1.148035 = 34.688199; MKT = 288.2822 K = 15.1322 °C
        ([5.0, 25.0], [3.0, 1.0], 15.1322),
        # cryo: -190 and -150 °C for equal times: 10000/83.15 = 120.264582, 10000/123.15 = 81.201786;
        # the -190 term is exp(-39.06) smaller, so mean = exp(-81.201786)/2
        # -ln(mean) = 81.201786 + 0.693147 = 81.894933; MKT = 122.1077 K = -151.0423 °C
        ([-190.0, -150.0], None, -151.0423),
    ],
)
def test_mean_kinetic_temperature(values: list[float], weights: list[float] | None, expected: float) -> None:
    """MKT matches the hand computation to 1e-4 °C."""
    assert mean_kinetic_temperature_c(values, weights) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("values", "weights", "problem"),
    [([], None, "no values"), ([1.0], [1.0, 2.0], "weights"), ([1.0], [0.0], "not all zero"), ([-300.0], None, "zero")],
)
def test_mean_kinetic_temperature_refuses_nonsense(
    values: list[float], weights: list[float] | None, problem: str
) -> None:
    """Empty input, mismatched or zero weights and sub-absolute-zero values raise ValueError."""
    with pytest.raises(ValueError, match=problem):
        mean_kinetic_temperature_c(values, weights)


def test_held_intervals_feed_time_weighted_mkt() -> None:
    """Irregular samples weighted by how long each held give the hand-computed 3:1 MKT."""
    samples = [(0, 5.0), (180 * MIN, 25.0)]
    spans = held_intervals(samples, 0, 240 * MIN, max_hold_ms=240 * MIN)
    assert spans == [(0, 180 * MIN, 5.0), (180 * MIN, 240 * MIN, 25.0)]
    mkt = mean_kinetic_temperature_c([v for _, _, v in spans], [hi - lo for lo, hi, _ in spans])
    assert mkt == pytest.approx(15.1322, abs=1e-4)


# 2..8 °C, samples each 10 min; a value holds until the next sample (at most 30 min).
FRIDGE = [(0, 5.0), (10 * MIN, 9.0), (20 * MIN, 9.5), (30 * MIN, 6.0), (40 * MIN, 1.0), (50 * MIN, 5.0)]


@pytest.mark.parametrize(
    ("series", "start", "end", "expected_min"),
    [
        # 9.0 and 9.5 held 10 min each, 1.0 held 10 min: 30 min out of range
        ([FRIDGE], 0, 60 * MIN, 30),
        # the window clips: [15, 45) min holds 5 min of 9.0, 10 of 9.5, 5 of 1.0
        ([FRIDGE], 15 * MIN, 45 * MIN, 20),
        # the last sample out of range holds until the window ends, capped by max_hold (30 min)
        ([[(0, 5.0), (10 * MIN, 9.0)]], 0, 120 * MIN, 30),
        # a fault reading holds nothing: unknown time is not counted
        ([[(0, 9.0), (10 * MIN, None), (20 * MIN, 5.0)]], 0, 30 * MIN, 10),
        # overlapping probes count once: FRIDGE 10..30 and 40..50, the other 20..40 -> union 10..50 = 40 min
        ([FRIDGE, [(0, 5.0), (20 * MIN, 8.5), (40 * MIN, 5.0)]], 0, 60 * MIN, 40),
        # equal to a limit is in range
        ([[(0, 8.0), (10 * MIN, 2.0), (20 * MIN, 2.0)]], 0, 30 * MIN, 0),
    ],
)
def test_time_out_of_range(
    series: list[list[tuple[int, float | None]]], start: int, end: int, expected_min: int
) -> None:
    """Time out of range per crate and window matches the hand count."""
    assert time_out_of_range_ms(series, 2.0, 8.0, start, end, max_hold_ms=30 * MIN) == expected_min * MIN


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 40 * MIN), st.one_of(st.none(), st.floats(-5.0, 15.0, allow_nan=False))),
        min_size=1,
        max_size=60,
    )
)
def test_cumulative_counter_agrees_with_time_out_of_range(steps: list[tuple[int, float | None]]) -> None:
    """The cumulative rule's running counter equals time_out_of_range_ms over the same single-probe history."""
    samples: list[tuple[int, float | None]] = []
    ts = 0
    for gap, value in steps:
        ts += gap
        samples.append((ts, value))
    evaluator = CumulativeEvaluator(CumulativeRule("b", "warning", budget_s=10**9, low_c=2.0, high_c=8.0))
    for seq, (ts, value) in enumerate(samples):
        evaluator.tick(ts, seq, {"probe1": value})
    expected = time_out_of_range_ms([samples], 2.0, 8.0, samples[0][0], samples[-1][0], max_hold_ms=15 * MIN)
    assert evaluator.used_ms == expected
