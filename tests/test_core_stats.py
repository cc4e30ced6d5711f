"""Report arithmetic in the core: statistics, excursions, budgets, verdict, data hash; hand-computed values."""

from __future__ import annotations

import hashlib

import pytest

from coldchain.alarms.rules import CumulativeRule
from coldchain.profiles import Profile, ThresholdRule
from coldchain.record.digest import data_digest
from coldchain.record.stats import BudgetUse, budget_use, default_max_hold_ms, product_limits, summarise
from coldchain.record.verdict import REVIEW_REQUIRED, WITHIN_PROFILE, verdict

S = 1000
WARNING = ThresholdRule("warning_high", "high", -160.0, "warning")
CRITICAL = ThresholdRule("critical_high", "high", -150.0, "critical")
CRYO = (WARNING, CRITICAL)


def test_statistics_of_a_short_excursion() -> None:
    """Two readings above -150 °C, 10 s apart, hold 20 s: min/max/mean as computed by hand, one excursion."""
    samples = [(0, -165.0), (10 * S, -148.0), (20 * S, -149.0), (30 * S, -165.0)]
    summary = summarise("probe1", samples, CRYO, end_ms=30 * S + 1, max_hold_ms=60 * S)
    assert (summary.count, summary.min_c, summary.max_c) == (4, -165.0, -148.0)
    assert summary.mean_c == pytest.approx((-165 - 148 - 149 - 165) / 4)
    assert summary.out_of_range_ms == 20 * S
    critical = summary.rules[1]
    assert critical.out_of_range_ms == 20 * S
    assert [(e.start_ms, e.end_ms, e.peak_c) for e in critical.excursions] == [(10 * S, 30 * S, -148.0)]


@pytest.mark.parametrize(
    ("delay_s", "excursions"),
    [(0, 1), (20, 1), (21, 0), (900, 0)],
)
def test_a_breach_shorter_than_the_delay_is_no_excursion_but_still_out_of_range(
    delay_s: float, excursions: int
) -> None:
    """A 20 s breach counts as an excursion only for delays up to 20 s; its time counts either way."""
    rule = ThresholdRule("critical_high", "high", 8.0, "critical", delay_s=delay_s)
    samples = [(0, 5.0), (10 * S, 9.0), (20 * S, 9.5), (30 * S, 5.0)]
    exposure = summarise("p", samples, (rule,), end_ms=30 * S + 1, max_hold_ms=60 * S).rules[0]
    assert exposure.out_of_range_ms == 20 * S
    assert len(exposure.excursions) == excursions


def test_a_reading_holds_no_longer_than_the_maximum_hold() -> None:
    """A warm reading followed by ten minutes of silence counts for the maximum hold only."""
    samples = [(0, -148.0), (600 * S, -165.0)]
    summary = summarise("p", samples, CRYO, end_ms=600 * S + 1, max_hold_ms=60 * S)
    assert summary.out_of_range_ms == 60 * S


def test_low_limit_peak_is_the_coldest_value() -> None:
    """For a low rule the excursion's peak is the lowest value."""
    rule = ThresholdRule("critical_low", "low", 2.0, "critical")
    samples = [(0, 4.0), (10 * S, 1.5), (20 * S, 0.5), (30 * S, 4.0)]
    (excursion,) = summarise("p", samples, (rule,), end_ms=30 * S + 1, max_hold_ms=60 * S).rules[0].excursions
    assert excursion.peak_c == 0.5


def test_mkt_of_a_constant_temperature_is_that_temperature() -> None:
    """MKT of a steady -170 °C is -170 °C."""
    samples = [(i * 10 * S, -170.0) for i in range(6)]
    assert summarise("p", samples, CRYO, end_ms=60 * S, max_hold_ms=60 * S).mkt_c == pytest.approx(-170.0)


@pytest.mark.parametrize(
    ("steps_s", "hold_s"),
    [([], 60), ([10, 10, 10], 60), ([60, 60, 600], 180), ([300], 900)],
)
def test_default_maximum_hold_is_three_typical_periods_at_least_a_minute(steps_s: list[int], hold_s: int) -> None:
    """Three median sampling periods, never below 60 s."""
    times = [0]
    for step in steps_s:
        times.append(times[-1] + step * S)
    assert default_max_hold_ms([(t, 0.0) for t in times]) == hold_s * S


def test_product_limits_are_the_tightest_critical_thresholds() -> None:
    """Warning rules do not narrow the product's range; the tightest critical low and high do."""
    rules = (
        ThresholdRule("a", "high", 8.0, "critical"),
        ThresholdRule("b", "high", 6.0, "warning"),
        ThresholdRule("c", "low", 2.0, "critical"),
    )
    assert product_limits(rules) == (2.0, 8.0)
    assert product_limits(CRYO) == (None, -150.0)


def test_budget_counts_any_probe_of_the_crate_once() -> None:
    """Two probes outside 2..8 °C over the same 20 s count 20 s, not 40 s."""
    rule = CumulativeRule("budget_spent", "critical", budget_s=15, low_c=2.0, high_c=8.0, max_hold_s=60)
    profile = Profile("refrigerated", "", (), (rule,))
    series = {"p1": [(0, 9.0), (20 * S, 5.0)], "p2": [(0, 9.5), (20 * S, 5.0)]}
    (use,) = budget_use(profile, series, 0, 20 * S + 1)
    assert use.used_ms == 20 * S
    assert use.exceeded


def test_verdict_rests_on_critical_breaches_alarms_and_budgets_only() -> None:
    """Warnings alone pass; a critical excursion, critical alarm, spent critical budget or no data call for review."""
    warm = summarise("p", [(0, -155.0), (10 * S, -165.0)], CRYO, end_ms=10 * S + 1, max_hold_ms=60 * S)
    hot = summarise("p", [(0, -148.0), (10 * S, -165.0)], CRYO, end_ms=10 * S + 1, max_hold_ms=60 * S)
    spent = BudgetUse(CumulativeRule("budget_spent", "critical", 10.0, 2.0, 8.0), 11 * S)
    half = BudgetUse(CumulativeRule("budget_half_used", "warning", 10.0, 2.0, 8.0), 11 * S)
    assert verdict([warm]).line == WITHIN_PROFILE
    assert verdict([warm], budgets=[half]).line == WITHIN_PROFILE
    assert verdict([hot]).reasons == ("p: critical_high (high -150 °C) breached for 10s, peak -148.00 °C",)
    assert verdict([warm], critical_alarms=["C-1/critical_high/p"]).line == REVIEW_REQUIRED
    assert verdict([warm], budgets=[spent]).line == REVIEW_REQUIRED
    assert verdict([]).line == REVIEW_REQUIRED


def test_data_hash_is_sha256_of_the_documented_lines() -> None:
    """The hash is SHA-256 over exactly the lines docs/queries.md describes (golden text)."""
    text = (
        '["coldchain-report-data",1,"C-1",0,100]\n'
        '["T","C-1","p1",5,"-162.3100",17]\n'
        '["T","C-1","p2",5,"-150.0000",null]\n'
        '["F","C-1","p2",6,"OPEN",18]\n'
        '["A",5,"C-1","critical_high","p2","critical","acknowledged","-150.0000","-150.0000",17,"C-1/x/p2/5",'
        '"Jos\\u00e9","ok"]\n'
        '["G",7,"C-1",18,19,"open"]\n'
    )
    digest = data_digest(
        "C-1",
        0,
        100,
        [("C-1", "p2", 5, -150.0, None, None), ("C-1", "p1", 5, -162.31, 17, None)],
        faults=[("C-1", "p2", 6, "OPEN", 18, None)],
        alarms=[
            (
                5,
                "C-1",
                "critical_high",
                "p2",
                "critical",
                "acknowledged",
                -150.0,
                -150.0,
                17,
                "C-1/x/p2/5",
                "José",
                "ok",
            )
        ],
        gaps=[(7, "C-1", 18, 19, "open")],
    )
    assert digest == hashlib.sha256(text.encode()).hexdigest()


def test_data_hash_changes_when_one_reading_changes_by_a_hundredth() -> None:
    """Altering one value by 0.01 °C changes the hash."""
    readings = [("C-1", "p1", i, -162.31, i, None) for i in range(100)]
    altered = [*readings[:50], ("C-1", "p1", 50, -162.30, 50, None), *readings[51:]]
    assert data_digest("C-1", 0, 100, readings) != data_digest("C-1", 0, 100, altered)


def test_a_corrected_time_ends_its_line_with_the_flag() -> None:
    """A reading or fault whose time the crate corrected ends with its flag; the others' lines are as before."""
    text = (
        '["coldchain-report-data",1,"C-1",0,100]\n'
        '["T","C-1","p1",5,"-162.3100",17,"ts_corrected"]\n'
        '["T","C-1","p1",6,"-162.0000",18]\n'
        '["F","C-1","p2",5,"OPEN",17,"ts_uncertain"]\n'
    )
    readings = [("C-1", "p1", 6, -162.0, 18, None), ("C-1", "p1", 5, -162.31, 17, "ts_corrected")]
    digest = data_digest("C-1", 0, 100, readings, faults=[("C-1", "p2", 5, "OPEN", 17, "ts_uncertain")])
    assert digest == hashlib.sha256(text.encode()).hexdigest()
