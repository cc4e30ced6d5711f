"""Shipped scenarios, run through the pure board and the core's excursion trackers with config/profiles.toml."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest
from sim_scenarios import CONFIG, EPOCH_MS, load, profiles, run

from coldchain.alarms.transition import ACTIVE, CLEARED
from coldchain.errors import ConfigError
from firmware_sim.scenario import paced_heartbeat, parse_scenario

HOUR_MS = 3_600_000
SCENARIOS = sorted(p.stem for p in (CONFIG / "scenarios").glob("*.toml"))


def _hours(ts: int) -> float:
    return (ts - EPOCH_MS) / HOUR_MS


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_shipped_scenario_loads_against_the_shipped_profiles(name: str) -> None:
    """Each file in config/scenarios/ parses, names a known profile and its name matches the file."""
    assert load(name).name == name


def test_normal_cryo_shipment_raises_no_alarm() -> None:
    """Five days in a charged dry shipper with a customs inspection: no alarm of any rule of the cryo profile."""
    outcome = run(load("cryo-normal-5d"))
    assert outcome.raised() == []
    assert -182.0 < outcome.maximum_c["probe1"] < -170.0  # the inspection shows, but stays far from -160


def test_cryo_shipper_out_of_ln2_on_day_3_predicts_then_raises_warning_and_critical() -> None:
    """Dry on day 3: predicted_excursion first, then warning_high and critical_high; nothing before day 3."""
    outcome = run(load("cryo-ln2-out-day3"))
    assert outcome.raised("warning_high", "critical_high") == [
        ("warning_high", "probe1", ACTIVE),
        ("critical_high", "probe1", ACTIVE),
    ]
    assert min(_hours(t.ts) for t in outcome.transitions) > 72
    predicted, warning, critical = (outcome.first(r) for r in ("predicted_excursion", "warning_high", "critical_high"))
    assert _hours(predicted.ts) < _hours(warning.ts) < _hours(critical.ts) < 80
    assert critical.value_c is not None
    assert critical.value_c > -150.0


def test_tipped_shipper_runs_dry_long_before_its_hold_time() -> None:
    """Tipped after 24 h, the 10-day shipper goes critical on day 4; upright it raises nothing."""
    scenario = load("cryo-tipped")
    outcome = run(scenario)
    assert outcome.raised("warning_high", "critical_high") == [
        ("warning_high", "probe1", ACTIVE),
        ("critical_high", "probe1", ACTIVE),
    ]
    assert 3 * 24 < _hours(outcome.first("critical_high").ts) < 4 * 24
    assert run(dataclasses.replace(scenario, events=())).raised() == []


def test_dry_ice_running_out_raises_critical_only_after_the_ice_is_gone() -> None:
    """Dry ice holds about -78 °C, then the box warms past -60 °C: one critical_high and nothing else."""
    scenario = load("dry-ice-runs-out")
    outcome = run(scenario)
    assert outcome.raised() == [("critical_high", "probe1", ACTIVE)]
    gone = scenario.model().depleted_at(scenario.duration_s)
    assert gone is not None
    assert _hours(outcome.transitions[0].ts) > gone / 3600


def test_fresh_shipment_ignores_short_lid_openings_but_not_the_summer_excursion() -> None:
    """Short openings raise nothing; the long one raises lid_open, critical_high on both probes and the budgets."""
    outcome = run(load("fresh-2-8-summer-lid"))
    assert min(_hours(t.ts) for t in outcome.transitions) > 37  # nothing from the 3-minute openings at 4 h and 9 h
    assert outcome.active_rules() == {"lid_open", "critical_high", "budget_half_used", "budget_spent"}
    assert {sensor for rule, sensor, state in outcome.raised("critical_high") if state == ACTIVE} == {
        "probe1",
        "lid_side",
    }
    assert outcome.raised("critical_high")[-1][2] == ACTIVE  # still warm at delivery: the packs are spent
    assert "critical_low" not in outcome.active_rules()


def test_short_lid_openings_do_cross_8_degrees_briefly() -> None:
    """The quiet lid openings are real: the lid-side probe does read above 8 °C during the first hours."""
    data = tomllib.loads((CONFIG / "scenarios" / "fresh-2-8-summer-lid.toml").read_text())
    data["events"] = [event for event in data["events"] if event["at"] in ("4h", "9h")]
    outcome = run(parse_scenario({**data, "duration": "12h"}, "first-12h.toml"))
    assert outcome.maximum_c["lid_side"] > 8.0
    assert outcome.raised() == []


def test_probe_failing_open_raises_a_sensor_fault_and_no_temperature_alarm() -> None:
    """From 48 h probe1 reports OPEN: one sensor_fault alarm for probe1, no temperature alarm; probe2 stays OK."""
    outcome = run(load("probe-fails-open"))
    assert outcome.raised() == [("sensor_fault", "probe1", ACTIVE)]
    assert _hours(outcome.first_fault_ts["probe1"]) == pytest.approx(48, abs=1 / 60)
    assert 48 < _hours(outcome.first("sensor_fault").ts) < 48 + 2 / 60  # after the rule's 30 s delay
    assert outcome.statuses["probe1", "OPEN"] == 24 * 60
    assert outcome.statuses["probe2", "OK"] == 72 * 60
    assert "probe2" not in outcome.first_fault_ts


def test_probe_shorting_sticking_and_out_of_range_each_raise_a_sensor_fault() -> None:
    """SHORT (cleared once the lead recovers), a stuck value and RANGE: sensor_fault on each probe, nothing else."""
    outcome = run(load("cryo-probe-faults"))
    assert outcome.raised() == [
        ("sensor_fault", "probe3", ACTIVE),
        ("sensor_fault", "probe1", ACTIVE),
        ("sensor_fault", "probe1", CLEARED),
        ("sensor_fault", "probe2", ACTIVE),
    ]
    assert [t.detail.split(" at ")[0] for t in outcome.transitions if t.state == ACTIVE] == [
        "probe reports RANGE",
        "probe reports SHORT",
        "probe stuck",
    ]
    shorted = [t for t in outcome.transitions if t.sensor == "probe1"]
    assert 12 < _hours(shorted[0].ts) < 12.1  # after the 30 s delay
    assert 14 < _hours(shorted[1].ts) < 14.1  # after 120 s of good readings
    assert 36.9 < _hours(outcome.transitions[-1].ts) < 37.1  # stuck from 36 h, for the rule's stuck_s of 1 h
    assert outcome.statuses["probe3", "RANGE"] == 72 * 60


def test_winter_pack_out_with_frozen_packs_raises_critical_low_and_spends_the_budget() -> None:
    """Fully frozen packs cannot take up cold: both probes fall below 2 °C on the nights, never above 8 °C."""
    outcome = run(load("fresh-2-8-winter-freeze"))
    assert outcome.active_rules() == {"critical_low", "budget_half_used", "budget_spent"}
    assert {sensor for rule, sensor, state in outcome.raised("critical_low") if state == ACTIVE} == {
        "probe1",
        "wall_side",
    }
    assert outcome.raised("critical_low")[-1][2] == CLEARED  # warm enough again by day
    assert max(outcome.maximum_c.values()) < 8.0


def test_board_faults_scenario_garbles_lines_only_while_corrupting() -> None:
    """The board-faults scenario produces bad-checksum lines and spikes, but every probe stays monitored."""
    outcome = run(load("board-faults"))
    assert outcome.bad_lines > 0
    assert outcome.maximum_c["probe1"] > 25.0  # a +30 °C spike
    assert outcome.statuses["probe2", "OK"] > 500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shipper": {"kind": "igloo"}}, "shipper.kind: 'igloo' is not one of"),
        ({"duration": "3 weeks"}, "duration: '3 weeks' is not a duration"),
        ({"profile": "vaccines"}, "profile: 'vaccines' is not one of the profiles"),
        ({"faults": [{"kind": "open", "probe": "probe9", "at": "1h"}]}, "faults[0].probe: 'probe9' is not one of"),
        ({"faults": [{"kind": "corrupt", "probe": "probe1", "at": "1h"}]}, "about the board, not a probe"),
        ({"faults": [{"kind": "melt", "at": "1h"}]}, "faults[0].kind: 'melt' is not one of"),
        ({"events": [{"kind": "lid_close", "at": "1h", "duration": "5m"}]}, "events[0].duration: only lid_open"),
        ({"events": [{"kind": "tip", "at": "30d"}]}, "events[0].at: 2592000.0 is above the maximum"),
        ({"shipper": {"kind": "dry_ice", "hold_days": 3}}, "shipper.hold_days: is not a known setting"),
        ({"shipper": {"kind": "dry_ice", "charge": 1.5}}, "shipper.charge: 1.5 is above the maximum 1.0"),
        ({"shipper": {"kind": "dry_ice", "coupling": 2}}, "shipper.coupling: must be between 0 and 1"),
        ({"ambient": {"profile": "custom", "points": [{"at": "5h", "c": 3}]}}, "ambient.points: ambient points"),
        ({"probes": []}, "probes: a scenario needs at least one"),
        ({"probes": [{"name": "a"}, {"name": "a"}]}, "probes: probe names must be unique"),
        ({"probes": [{"name": "a", "location": "roof"}]}, "probes[0].location: 'roof' is not one of"),
        ({"board": {"period": 0}}, "board.period: 0 is below the minimum"),
        ({"lanes": "x"}, "lanes: is not a known setting"),
        ({"events": [{"kind": "tip", "at": "1h", "charge": 0.5}]}, "events[0].charge: only refill events take"),
    ],
)
def test_bad_scenario_values_name_file_key_and_problem(change: dict[str, object], message: str) -> None:
    """Each bad scenario value raises a ConfigError that names the file, the key and the problem."""
    base = tomllib.loads((CONFIG / "scenarios" / "cryo-normal-5d.toml").read_text())
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        parse_scenario({**base, **change}, "my.toml", profiles())
    assert str(caught.value).startswith("my.toml: ")


@pytest.mark.parametrize(
    ("heartbeat_s", "speed", "paced"),
    [(300.0, 1.0, 5.0), (300.0, 100_000.0, 300.0), (300.0, 20.0, 100.0), (0.0, 1.0, 0.0)],
)
def test_scenario_heartbeat_is_paced_to_at_most_5_real_seconds(heartbeat_s: float, speed: float, paced: float) -> None:
    """A 5-min scenario heartbeat comes every 5 s in real time, unchanged when accelerated; 0 stays off."""
    assert paced_heartbeat(heartbeat_s, speed) == paced


def test_demo_story_crate_warns_goes_critical_and_clears_after_its_refill() -> None:
    """demo-cryo-reiced: warning, critical, then both cleared once it is re-iced at 80 s, within 2 minutes."""
    outcome = run(dataclasses.replace(load("demo-cryo-reiced"), duration_s=150))
    story = [(t.rule, t.state, (t.ts - EPOCH_MS) / 1000) for t in outcome.transitions]
    assert [(rule, state) for rule, state, _ in story] == [
        ("warning_high", ACTIVE),
        ("critical_high", ACTIVE),
        ("critical_high", CLEARED),
        ("warning_high", CLEARED),
    ]
    assert 30 < story[0][2] < story[1][2] < 80 < story[2][2] < story[3][2] < 120


def test_demo_offline_crate_has_one_short_warning_while_its_lid_is_open() -> None:
    """demo-cryo-inspection: one warning_high, raised after 30 s and cleared before 100 s, every 1 or 4 s."""
    scenario = dataclasses.replace(load("demo-cryo-inspection"), duration_s=150)
    for period in (1.0, 4.0):
        outcome = run(dataclasses.replace(scenario, period_s=period))
        assert outcome.raised() == [("warning_high", "probe1", ACTIVE), ("warning_high", "probe1", CLEARED)]
        assert 30 < _hours(outcome.transitions[0].ts) * 3600 < _hours(outcome.transitions[1].ts) * 3600 < 100
