"""Scenarios end to end: sim (accelerated, board clock) -> agent -> broker -> gateway -> InfluxDB and alarms."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_helpers import (
    Client,
    GatewayProcess,
    count,
    gateway_config,
    wait_until,
)
from sim_helpers import running_sim, sim_agent_config
from sim_scenarios import EPOCH_MS, Outcome, load, run

from cli.services import InfluxDB, Mosquitto
from coldchain.alarms.transition import ACTIVE

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "config" / "scenarios"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


# Stale data and crate offline are judged on arrival (wall-clock) time, which no pure run of a scenario
# has: the pure prediction never holds them, and tests/test_alarm_liveness_e2e.py raises them through a
# real agent. Here every crate streams its backlog without pause while its agent stays online, so neither
# may appear at all (a gateway judging them by the readings' days-old event time would raise stale at once).
ARRIVAL_TIME_KINDS = ("stale", "offline")

# (rule, sensor, state, ms since the shipment began, detail of a raise)
Story = list[tuple[str, str, str, int, str]]


def _predicted(outcome: Outcome) -> Story:
    """The pure board and CrateMonitor's transitions, in the form stored ones are compared in."""
    return sorted(
        (t.rule, t.sensor, t.state, t.ts - EPOCH_MS, t.detail if t.state == ACTIVE else "") for t in outcome.transitions
    )


def _stored(influx: InfluxDB, database: str, crate: str, epoch: int) -> tuple[Story, list[dict[str, object]]]:
    """The crate's event-time alarm transitions in InfluxDB (as ``_predicted``), and its arrival-time rows."""
    rows = influx.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)
    story = sorted(  # InfluxDB orders one instant's rows its own way
        (
            str(row["rule"]),
            str(row["sensor"]),
            str(row["state"]),
            int(row["time"]) - epoch,  # type: ignore[call-overload]
            str(row["detail"]) if row["state"] == ACTIVE else "",  # a clear keeps its raise's detail
        )
        for row in rows
        if row["kind"] not in ARRIVAL_TIME_KINDS
    )
    return story, [row for row in rows if row["kind"] in ARRIVAL_TIME_KINDS]


def _settled(
    influx: InfluxDB, database: str, crate: str, epoch: int, predicted: Story
) -> tuple[Story, list[dict[str, object]]]:
    """``_stored`` once it equals ``predicted`` or 20 s passed (alarms a tick announces are written by the tick)."""
    deadline = time.monotonic() + 20
    while (stored := _stored(influx, database, crate, epoch))[0] != predicted and time.monotonic() < deadline:
        time.sleep(0.2)
    return stored


def _latest(listener: Client) -> dict[tuple[str, str], str]:
    """(rule, sensor) -> state of the last alarm message received of each."""
    return {(body["rule"], body["sensor"]): body["state"] for body in listener.received("coldchain/v1/alarms/")}


def _raised(story: Story) -> set[str]:
    return {rule for rule, _, state, _, _ in story if state == ACTIVE}


@dataclass
class Shipment:
    """What one end-to-end run left behind."""

    crate: str
    epoch: int
    alarms: Client  # subscribed to the crate's alarm topics throughout


@contextlib.contextmanager
def _shipped(
    tmp_path: Path, broker: Mosquitto, influx: InfluxDB, database: str, crate: str, scenario: str, *sim_args: str
) -> Iterator[Shipment]:
    """Run a scenario through a real agent and gateway; the shipment's timestamps lie in the past."""
    gateway = GatewayProcess(gateway_config(tmp_path, broker, influx, database), tmp_path / "gateway.log")
    listener = Client(broker, [f"coldchain/v1/alarms/{crate}/#"])
    epoch = time.time_ns() // 1_000_000 - 5 * DAY_MS  # the gateway refuses timestamps from the future
    agent: subprocess.Popen[bytes] | None = None
    try:
        args = ("--scenario", str(SCENARIOS / scenario), "--speed", "100000", "--epoch-ms", str(epoch), *sim_args)
        args += ("--link", str(tmp_path / "tty"))  # a freed /dev/pts number may soon belong to another test's pty
        with running_sim(*args, "--seed", "3") as sim, (tmp_path / "agent.log").open("wb") as agent_log:
            sensors = [probe.name for probe in load(Path(scenario).stem).probes]
            config = sim_agent_config(tmp_path, crate, broker, sim.device, sensors)
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge", "--config", str(config)], stdout=agent_log, stderr=agent_log, cwd=ROOT
            )
            assert sim.process.wait(60) == 0  # the sim waited for the agent, ran the scenario and drained
        yield Shipment(crate, epoch, listener)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        listener.close()
        gateway.stop()


@pytest.mark.integration
def test_ln2_running_out_on_day_3_reaches_influxdb_and_raises_the_cryo_alarms(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Four simulated days in seconds: every 5-min sample stored at board time, and exactly the predicted alarms:
    rate of rise and predicted excursion, then warning and critical, all from day 3."""
    mosquitto = make_mosquitto()  # its own: the retained alarms it leaves must not reach later tests' pages
    crate = f"{crate_prefix}-ln2"
    with _shipped(tmp_path, mosquitto, influxdb, database, crate, "cryo-ln2-out-day3.toml", "--period", "300") as ship:
        ticks = 4 * 24 * 12
        wait_until(lambda: count(influxdb, database, crate) >= ticks, timeout=60, what=f"{ticks} stored readings")
        assert count(influxdb, database, crate) == ticks
        first, last = (
            influxdb.rows(f"SELECT {f}(value_c) FROM temperature WHERE crate = '{crate}'", database)[0]
            for f in ("FIRST", "LAST")
        )
        assert first["time"] == ship.epoch
        assert last["time"] == ship.epoch + 4 * DAY_MS - 300_000
        assert -184.0 < first["first"] < -182.0  # type: ignore[operator]  # LN2 vapour of a 30 % charge
        predicted = _predicted(run(dataclasses.replace(load("cryo-ln2-out-day3"), period_s=300), seed=3))
        story, arrival = _settled(influxdb, database, crate, ship.epoch, predicted)
        # each alarm's retained state on the broker is its last transition
        final = {(rule, sensor): state for rule, sensor, state, _, _ in sorted(story, key=lambda t: t[3])}
        wait_until(lambda: _latest(ship.alarms) == final, timeout=20, what=f"alarm states {final} on MQTT")
    assert story == predicted  # every rule kind that fires on the board's timestamps, at the same times
    assert arrival == []
    assert _raised(story) == {"rate_of_rise", "predicted_excursion", "warning_high", "critical_high"}
    raised_at = {r: min(ms for rule, _, state, ms, _ in story if rule == r and state == ACTIVE) for r in _raised(story)}
    # the trend rules warn before the limits are crossed, and only once the nitrogen is gone
    assert (
        72 * HOUR_MS < raised_at["rate_of_rise"] < raised_at["warning_high"] < raised_at["critical_high"] < 80 * HOUR_MS
    )
    assert raised_at["predicted_excursion"] < raised_at["warning_high"]


# scenario -> sample period for the run (coarse enough to keep the test short, fine enough for its story)
PARALLEL = {
    "cryo-normal-5d": 600,
    "cryo-tipped": 600,
    "dry-ice-runs-out": 600,
    "fresh-2-8-summer-lid": 300,
    "fresh-2-8-winter-freeze": 600,
    "probe-fails-open": 1200,
    "cryo-probe-faults": 600,
}
# scenario -> the rules it must raise, and no other (with the LN2 test's rate_of_rise: every event-time kind)
MUST_RAISE = {
    "cryo-normal-5d": set(),  # the customs inspection's 90 s lid opening included
    "cryo-tipped": {"predicted_excursion", "warning_high", "critical_high"},
    "dry-ice-runs-out": {"critical_high"},
    "fresh-2-8-summer-lid": {"lid_open", "critical_high", "budget_half_used", "budget_spent"},
    "fresh-2-8-winter-freeze": {"critical_low", "budget_half_used", "budget_spent"},
    "probe-fails-open": {"sensor_fault"},  # and no temperature alarm on the broken probe
    "cryo-probe-faults": {"sensor_fault"},
}


@pytest.mark.integration
def test_every_other_scenario_end_to_end_raises_exactly_the_predicted_alarms(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Seven scenarios at once through agents and one gateway: InfluxDB holds every reading and exactly the
    alarm transitions of every event-time rule kind that the pure board and CrateMonitor predict for the same
    seed, at the same times; none of stale or offline."""
    mosquitto = make_mosquitto()  # its own: the retained alarms it leaves must not reach later tests' pages
    crates = {name: f"{crate_prefix}-{i}" for i, name in enumerate(PARALLEL)}
    scenarios = {name: dataclasses.replace(load(name), period_s=period) for name, period in PARALLEL.items()}
    profiles = "".join(f'[crates."{crates[n]}"]\nprofile = "{s.profile}"\n' for n, s in scenarios.items())
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database, profiles), tmp_path / "gw.log")
    epoch = time.time_ns() // 1_000_000 - 6 * DAY_MS
    agents: list[subprocess.Popen[bytes]] = []
    stories: dict[str, Story] = {}
    try:
        with contextlib.ExitStack() as stack:
            sims = []
            for name, scenario in scenarios.items():
                directory = tmp_path / name
                directory.mkdir()
                args = ("--scenario", str(SCENARIOS / f"{name}.toml"), "--period", str(PARALLEL[name]))
                # a sim that finishes early frees its /dev/pts number, which the next sim may get: an agent
                # reopening the bare path would then read another crate's board beside that crate's agent
                args += ("--link", str(directory / "tty"))
                sim = stack.enter_context(
                    running_sim(*args, "--speed", "100000", "--epoch-ms", str(epoch), "--seed", "1")
                )
                sensors = [probe.name for probe in scenario.probes]
                config = sim_agent_config(directory, crates[name], mosquitto, sim.device, sensors)
                log = stack.enter_context((directory / "agent.log").open("wb"))
                agents.append(
                    subprocess.Popen([sys.executable, "-m", "edge", "--config", str(config)], stdout=log, stderr=log)
                )
                sims.append(sim)
            assert [sim.process.wait(60) for sim in sims] == [0] * len(sims)
        for name, scenario in scenarios.items():
            crate = crates[name]
            readings = round(scenario.duration_s / scenario.period_s) * len(scenario.probes)
            wait_until(lambda c=crate, n=readings: count(influxdb, database, c) >= n, timeout=60, what=f"{name}")
            predicted = _predicted(run(scenario))
            stories[name], arrival = _settled(influxdb, database, crate, epoch, predicted)
            assert stories[name] == predicted, name
            assert arrival == [], name
            assert _raised(stories[name]) == MUST_RAISE[name], name
        faults = influxdb.rows(
            f"SELECT COUNT(fault) FROM temperature WHERE crate = '{crates['probe-fails-open']}' AND fault = 'OPEN'",
            database,
        )
        assert faults[0]["count"] == 24 * 3  # probe1, from 48 h to 72 h at one sample per 20 min
        raised = influxdb.rows("SELECT * FROM alarm WHERE state = 'active'", database)  # this test's database
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(10)
        gateway.stop()
    assert {row["kind"] for row in raised} == {"high", "low", "cumulative", "prediction", "lid", "sensor_fault"}
    assert stories["cryo-normal-5d"] == []
    lid = [ms for rule, _, _, ms, _ in stories["fresh-2-8-summer-lid"] if rule == "lid_open"]
    assert len(lid) == 2  # raised and cleared once: the 3-min openings at 4 h and 9 h raised nothing
    assert min(lid) > 37 * HOUR_MS
    faulty = {
        (name, sensor, detail.split(" at ")[0])
        for name in ("probe-fails-open", "cryo-probe-faults")
        for _, sensor, state, _, detail in stories[name]
        if state == ACTIVE
    }
    assert faulty == {  # sensor_fault alone (MUST_RAISE), on the faulty probe, for each way a probe fails
        ("probe-fails-open", "probe1", "probe reports OPEN"),
        ("cryo-probe-faults", "probe1", "probe reports SHORT"),
        ("cryo-probe-faults", "probe2", "probe stuck"),
        ("cryo-probe-faults", "probe3", "probe reports RANGE"),
    }
    assert ("sensor_fault", "probe1", "cleared") in {t[:3] for t in stories["cryo-probe-faults"]}  # the short ended


@pytest.mark.integration
def test_tipped_shipper_orientation_and_shock_reach_influxdb_at_board_time(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """cryo-tipped-jolt through sim, agent and gateway: upright at the start, 88.5° and a 3.5 g jolt at 24 h;
    the shock alarm raised once at 24 h and the tilt alarm once at 24 h 10 min, dated from the tip."""
    mosquitto = make_mosquitto()  # its own: the retained alarms it leaves must not reach later tests' pages
    crate = f"{crate_prefix}-tlt"
    with _shipped(tmp_path, mosquitto, influxdb, database, crate, "cryo-tipped-jolt.toml", "--period", "3600") as ship:
        where = f"WHERE crate = '{crate}'"
        wait_until(lambda: influxdb.rows(f"SELECT * FROM shock {where}", database), timeout=30, what="the shock point")
        orientation = influxdb.rows(f"SELECT tilt_deg FROM orientation {where}", database)
        shock = influxdb.rows(f"SELECT shock_g, tilt_deg FROM shock {where}", database)
        predicted = _predicted(run(dataclasses.replace(load("cryo-tipped-jolt"), period_s=3600), seed=3))
        story, arrival = _settled(influxdb, database, crate, ship.epoch, predicted)
        raised = influxdb.rows(f"SELECT * FROM alarm {where} AND state = 'active' AND kind =~ /tilt|shock/", database)
    assert [(r["time"] - ship.epoch, r["tilt_deg"]) for r in orientation] == [(0, 0.0), (24 * HOUR_MS, 88.5)]
    assert [(r["time"] - ship.epoch, r["shock_g"], r["tilt_deg"]) for r in shock] == [(24 * HOUR_MS, 3.5, 88.5)]
    assert story == predicted
    assert arrival == []
    once = sorted((r["rule"], r["time"] - ship.epoch, r["started_ts"] - ship.epoch) for r in raised)
    assert once == [("dropped", 24 * HOUR_MS, 24 * HOUR_MS), ("tipped", 24 * HOUR_MS + 600_000, 24 * HOUR_MS)]
