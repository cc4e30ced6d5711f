"""Shipper physics as a pure function of parameters and time: hold times, warming, tipping, lids, lanes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from firmware_sim.ambient import PRESETS, Ambient
from firmware_sim.model import SHIPPER_DEFAULTS, Event, ShipperModel

DAY = 86_400.0
HOUR = 3600.0
LN2 = SHIPPER_DEFAULTS["ln2_dry_shipper"]
ROOM = Ambient.constant(22.0)


def test_ln2_shipper_holds_vapour_phase_for_its_static_hold_time() -> None:
    """Full LN2 charge at 22 °C: -190..-180 °C for 10 days, then the nitrogen is gone."""
    model = ShipperModel(LN2, ROOM)
    assert all(-190.5 <= model.temperature(h * HOUR) <= -179.5 for h in range(0, 240, 3))
    depleted = model.depleted_at(12 * DAY)
    assert depleted == pytest.approx(10 * DAY, rel=0.01)


def test_dry_ln2_shipper_warms_toward_ambient_and_crosses_minus_150_within_hours() -> None:
    """Once dry, the payload passes -150 °C within a few hours and approaches, never exceeds, ambient."""
    model = ShipperModel(replace(LN2, charge=0.1), ROOM)
    dry = model.depleted_at(3 * DAY)
    assert dry is not None
    crossing = next(t for t in range(int(dry), int(dry + DAY), 60) if model.temperature(t) > -150.0)
    assert 1 * HOUR < crossing - dry < 8 * HOUR
    assert model.temperature(dry + 10 * DAY) == pytest.approx(22.0, abs=1.0)
    assert max(model.temperature(dry + h * HOUR) for h in range(0, 400, 5)) <= 22.0


@pytest.mark.parametrize(("lane", "longer"), [("summer", False), ("winter", True)])
def test_ambient_lane_changes_the_hold_time(lane: str, longer: bool) -> None:
    """A summer lane empties the shipper sooner than 22 °C, a winter lane later."""
    dry = ShipperModel(LN2, Ambient(PRESETS[lane])).depleted_at(14 * DAY)
    assert dry is not None
    assert (dry > 10 * DAY) is longer


def test_tipped_shipper_loses_nitrogen_tip_factor_times_faster() -> None:
    """Tipped from the start, a 10-day shipper with tip_factor 4 is dry after 2.5 days."""
    model = ShipperModel(LN2, ROOM, [Event(0.0, "tip")])
    assert model.depleted_at(5 * DAY) == pytest.approx(2.5 * DAY, rel=0.01)


def test_putting_the_shipper_upright_restores_the_normal_loss_rate() -> None:
    """Tipped for one day then upright: 4 days' worth of nitrogen lost in that day, dry after 7 days."""
    model = ShipperModel(LN2, ROOM, [Event(0.0, "tip"), Event(DAY, "upright")])
    assert model.depleted_at(10 * DAY) == pytest.approx(7 * DAY, rel=0.01)


def test_dry_ice_sublimes_faster_in_warmer_ambient() -> None:
    """Dry ice holds -78 °C; its hold time scales with the ambient difference (22 vs 35 °C)."""
    ice = SHIPPER_DEFAULTS["dry_ice"]
    mild = ShipperModel(ice, ROOM)
    hot = ShipperModel(ice, Ambient.constant(35.0))
    assert mild.temperature(2 * DAY) == pytest.approx(-78.0, abs=0.01)
    mild_dry, hot_dry = mild.depleted_at(10 * DAY), hot.depleted_at(10 * DAY)
    assert mild_dry is not None
    assert hot_dry is not None
    assert hot_dry / mild_dry == pytest.approx((22 + 78) / (35 + 78), rel=0.01)
    assert mild.temperature(mild_dry + DAY) > -10.0


def test_pcm_shipper_stays_in_2_to_8_until_the_packs_melt() -> None:
    """Phase-change packs hold 2-8 °C at 22 °C while they last, then the box warms past 8 °C."""
    model = ShipperModel(SHIPPER_DEFAULTS["pcm_2_8"], ROOM)
    melted = model.depleted_at(5 * DAY)
    assert melted is not None
    assert all(2.0 <= model.temperature(t) <= 8.0 for t in range(0, int(melted), 1800))
    assert model.temperature(melted + 12 * HOUR) > 8.0


def test_fully_frozen_packs_in_winter_chill_the_payload_below_2() -> None:
    """Packs already fully frozen cannot absorb cold: at -10 °C the payload falls below 2 °C."""
    model = ShipperModel(replace(SHIPPER_DEFAULTS["pcm_2_8"], charge=1.0), Ambient.constant(-10.0))
    assert model.temperature(12 * HOUR) < 2.0


def test_controlled_ambient_holds_15_to_25_on_a_summer_lane_while_its_battery_lasts() -> None:
    """The active 15-25 °C container stays in band until its battery is flat, then follows the lane."""
    model = ShipperModel(SHIPPER_DEFAULTS["controlled_ambient"], Ambient(PRESETS["summer"]))
    flat = model.depleted_at(10 * DAY)
    assert flat is not None
    assert all(15.0 <= model.temperature(t) <= 25.0 for t in range(0, int(flat), 1800))
    assert model.temperature(flat + DAY + 14 * HOUR) > 25.0


def test_lid_open_transient_follows_its_time_constant_and_recovers() -> None:
    """With the lid open the payload closes 63 % of the gap to ambient in lid_tau; it recovers after closing."""
    params = SHIPPER_DEFAULTS["pcm_2_8"]
    opened = 6 * HOUR
    model = ShipperModel(params, ROOM, [Event(opened, "lid_open"), Event(opened + 2 * HOUR, "lid_close")], step_s=1)
    before = model.temperature(opened)
    tau = params.lid_tau_min * 60
    expected = before + (22.0 - before) * (1 - math.exp(-1))
    assert model.temperature(opened + tau) == pytest.approx(expected, abs=0.2)
    assert model.temperature(opened + 2 * HOUR + 3 * params.recovery_tau_min * 60) == pytest.approx(before, abs=1.0)
    assert model.state(opened + 60).lid_open
    assert not model.state(opened + 3 * HOUR).lid_open


def test_model_is_a_pure_function_of_parameters_and_time() -> None:
    """Queried out of order, or by a fresh model, every time gives exactly the same temperature."""
    times = [5 * DAY, 1.5, HOUR * 7.25, 0.0, 3 * DAY + 17]
    first = ShipperModel(LN2, Ambient(PRESETS["summer"]), [Event(HOUR, "lid_open"), Event(HOUR + 120, "lid_close")])
    second = ShipperModel(LN2, Ambient(PRESETS["summer"]), [Event(HOUR, "lid_open"), Event(HOUR + 120, "lid_close")])
    forward = [first.temperature(t) for t in times]
    backward = {t: second.temperature(t) for t in sorted(times, reverse=True)}
    assert forward == [backward[t] for t in times]


@pytest.mark.parametrize(
    ("lane", "low", "high"), [("summer", 25.0, 35.0), ("winter", -10.0, 18.0), ("constant", 22.0, 22.0)]
)
def test_ambient_presets_cycle_daily_between_their_extremes(lane: str, low: float, high: float) -> None:
    """Each preset repeats every 24 h and stays within its night and day temperatures."""
    ambient = Ambient(PRESETS[lane])
    values = [ambient.at(m * 60) for m in range(0, 24 * 60, 10)]
    assert (min(values), max(values)) == (low, high)
    assert ambient.at(5 * HOUR + 3 * DAY) == ambient.at(5 * HOUR)


def test_custom_ambient_interpolates_between_points() -> None:
    """Between two points the ambient is linear; an offset shifts the whole profile."""
    ambient = Ambient(((0.0, 10.0), (10.0, 30.0), (24.0, 10.0)), 24.0, offset_c=-5.0)
    assert ambient.at(5 * HOUR) == pytest.approx(15.0)
    assert ambient.at(29 * HOUR) == pytest.approx(15.0)


def test_refill_restores_the_buffer_and_the_payload_cools_back_to_the_plateau() -> None:
    """A dry shipper re-iced after 2 days of warming holds -190..-180 °C again; tipping flags are untouched."""
    dry = replace(LN2, charge=0.0, start_c=-185.0)
    model = ShipperModel(dry, ROOM, [Event(2 * DAY, "refill", charge=0.5)])
    assert model.temperature(2 * DAY) > -150.0
    assert model.state(2 * DAY + 10).charge == pytest.approx(0.5, abs=0.01)
    assert -186.0 < model.temperature(2 * DAY + 2 * HOUR) < -184.0
    assert model.flags_at(3 * DAY) == (False, False)
    assert ShipperModel(dry, ROOM).temperature(2 * DAY + 2 * HOUR) > -150.0


def test_refill_charge_outside_0_to_1_is_refused() -> None:
    """An event's charge is a fraction of a full buffer."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        Event(0.0, "refill", charge=1.5)
