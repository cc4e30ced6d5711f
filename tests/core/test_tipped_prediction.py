"""The prediction of time to excursion on a tipped crate: its warming counts ``tipped_factor`` times faster."""

from __future__ import annotations

import pytest
from alarm_helpers import HOUR, ln2_running_out, profile_of, run_trace, shipped_profiles, telemetry

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.errors import ConfigError

PREDICTION = """
[p]
[[p.rules]]
name = "predicted"
kind = "prediction"
severity = "warning"
target_c = -150.0
horizon_s = 43200
window_s = 7200
min_samples = 10
delay_s = 0
tipped_factor = 4.0
[[p.rules]]
name = "tipped"
kind = "tilt"
severity = "warning"
limit_deg = 30.0
delay_s = 600
"""


def _predicted(tilt_deg: float | None, profile: str = PREDICTION) -> list[tuple[int, str]]:
    """(minute, detail) of each raise of ``predicted`` on the LN2 trace, the crate standing at ``tilt_deg``."""
    monitor = CrateMonitor("C-1", profile_of(profile))
    if tilt_deg is not None:
        monitor.orientation(tilt_deg, 0)
    out = run_trace(monitor, ln2_running_out, hours=24)
    return [(t.ts // 60_000, t.detail) for t in out if t.rule == "predicted" and t.state == "active"]


def test_a_tipped_crate_is_predicted_earlier_and_the_detail_says_why() -> None:
    """On its side (88° against a 30° limit) the same warming raises the prediction earlier, saying it is tipped."""
    ((upright_min, upright_detail),) = _predicted(0.0)
    ((tipped_min, tipped_detail),) = _predicted(88.0)
    assert tipped_min < upright_min - 10 * 60  # 7.4 h against 19.4 h: the nitrogen is gone at 4 h
    assert "tipped" not in upright_detail
    assert "tipped 88°, so boiling off 4x faster" in tipped_detail
    assert tipped_detail.startswith("predicted to reach -150.0 °C in ~")


def test_a_tilt_within_the_limit_or_no_factor_changes_nothing() -> None:
    """A lean under the tilt limit, or a profile without tipped_factor, predicts as upright."""
    upright = _predicted(None)
    assert _predicted(25.0) == upright
    assert _predicted(88.0, PREDICTION.replace("tipped_factor = 4.0\n", "")) == upright


def test_putting_the_crate_upright_again_ends_the_faster_count() -> None:
    """Tipped, then upright before the warming starts: the prediction comes as for a crate never tipped."""
    monitor = CrateMonitor("C-1", profile_of(PREDICTION))
    monitor.orientation(88.0, 0)
    monitor.orientation(2.0, HOUR)
    out = run_trace(monitor, ln2_running_out, hours=24)
    assert [(t.ts // 60_000, t.detail) for t in out if t.rule == "predicted" and t.state == "active"] == _predicted(
        None
    )


def test_tipped_state_survives_a_restart_and_reaches_probes_seen_later() -> None:
    """The monitor's snapshot keeps the tilt: a restored monitor counts a new probe's warming as tipped."""
    monitor = CrateMonitor("C-1", profile_of(PREDICTION))
    monitor.orientation(88.0, 0)
    restored = CrateMonitor("C-1", profile_of(PREDICTION))
    restored.restore(monitor.snapshot())
    out = run_trace(restored, ln2_running_out, hours=24)
    assert [(t.ts // 60_000, t.detail) for t in out if t.rule == "predicted" and t.state == "active"] == _predicted(
        88.0
    )
    assert restored.feed(telemetry(10_000, 25 * HOUR, -150.0, sensor="probe2"), 25 * HOUR) == []
    assert restored.probes["probe2"][-1].tipped_deg == 88.0  # type: ignore[union-attr]


def test_cryo_counts_a_tipped_shipper_four_times_faster() -> None:
    """The shipped cryo profile takes the simulator's LN2 dry shipper figure: 4x on its side past 30°."""
    cryo = shipped_profiles()["cryo"]
    assert cryo.tipped_deg == 30.0
    assert [r.tipped_factor for r in cryo.extra_rules if r.kind == "prediction"] == [4.0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("tipped_factor = 0.5", "p.rules[0].tipped_factor", "below the minimum"),
        ('tipped_factor = "4x"', "p.rules[0].tipped_factor", "must be a number"),
        ("tipped_factor = 4.0", "p.rules", "needs a tilt rule"),
    ],
)
def test_bad_tipped_factor_is_refused_naming_the_key(text: str, key: str, problem: str) -> None:
    """A factor under 1, not a number, or without a tilt rule to say when the crate is tipped: ConfigError."""
    rule = '[p]\n[[p.rules]]\nname = "x"\nkind = "prediction"\nseverity = "warning"\ntarget_c = -150\nhorizon_s = 60\n'
    with pytest.raises(ConfigError) as caught:
        profile_of(rule + text + "\n")
    assert caught.value.key == key
    assert problem in caught.value.problem
