"""Scenarios end to end: sim (accelerated, board clock) -> agent -> broker -> gateway -> InfluxDB and alarms."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_helpers import (
    Client,
    GatewayProcess,
    count,
    gateway_cleanup,  # noqa: F401  (autouse: stops a gateway a failed test left running)
    gateway_config,
    wait_until,
)
from sim_helpers import running_sim
from sim_scenarios import EPOCH_MS, load, run

from cli.services import InfluxDB, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "config" / "scenarios"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass
class Shipment:
    """What one end-to-end run left behind."""

    crate: str
    epoch: int
    alarms: Client  # subscribed to the crate's alarm topics throughout


def _agent_config(directory: Path, crate: str, broker: Mosquitto, device: str, sensors: list[str]) -> Path:
    path = directory / "agent.toml"
    path.write_text(
        f"""[crate]
id = "{crate}"
profile = "cryo"

[mqtt]
host = "{broker.host}"
port = {broker.port}
reconnect_min_s = 0.05
reconnect_max_s = 0.3

[spool]
path = "spool.sqlite"

[[probes]]
driver = "serial"
port = "{device}"
sensors = {sensors!r}
time_source = "board"
tick_timeout_s = 0.2
""".replace("'", '"')
    )
    return path


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
            config = _agent_config(tmp_path, crate, broker, sim.device, sensors)
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
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Four simulated days in seconds: every 5-min sample stored at board time; warning then critical from day 3."""
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
        # the threshold rules' story (rate-of-rise and prediction rules also fire on this crate)
        query = f"SELECT * FROM alarm WHERE crate = '{crate}' AND rule =~ /^(warning|critical)_high$/"
        wait_until(lambda: len(influxdb.rows(query, database)) >= 2, timeout=20, what="two alarms in InfluxDB")
        stored = influxdb.rows(query, database)
        assert [(row["rule"], row["state"]) for row in stored] == [
            ("warning_high", "active"),
            ("critical_high", "active"),
        ]
        critical = stored[1]
        assert 72 < (critical["time"] - ship.epoch) / HOUR_MS < 80  # type: ignore[operator]
        assert critical["value_c"] > -150.0  # type: ignore[operator]


# scenario -> sample period for the run (coarse enough to keep the test short, fine enough for its story)
PARALLEL = {
    "cryo-normal-5d": 600,
    "cryo-tipped": 600,
    "dry-ice-runs-out": 600,
    "fresh-2-8-summer-lid": 300,
    "probe-fails-open": 1200,
}
THRESHOLD_RULES = ("warning_high", "critical_high", "critical_low")


@pytest.mark.integration
def test_every_other_scenario_end_to_end_raises_exactly_the_predicted_threshold_alarms(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Five scenarios at once through agents and one gateway: InfluxDB holds every reading and exactly the
    threshold alarm transitions the pure board and CrateMonitor predict for the same seed, at the same times."""
    crates = {name: f"{crate_prefix}-{i}" for i, name in enumerate(PARALLEL)}
    scenarios = {name: dataclasses.replace(load(name), period_s=period) for name, period in PARALLEL.items()}
    profiles = "".join(f'[crates."{crates[n]}"]\nprofile = "{s.profile}"\n' for n, s in scenarios.items())
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database, profiles), tmp_path / "gw.log")
    epoch = time.time_ns() // 1_000_000 - 6 * DAY_MS
    agents: list[subprocess.Popen[bytes]] = []
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
                config = _agent_config(directory, crates[name], mosquitto, sim.device, sensors)
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
            predicted = [
                (t.rule, t.sensor, t.state, t.ts - EPOCH_MS)
                for t in run(scenario).transitions
                if t.rule in THRESHOLD_RULES
            ]
            stored = [
                (row["rule"], row["sensor"], row["state"], row["time"] - epoch)  # type: ignore[operator]
                for row in influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)
                if row["rule"] in THRESHOLD_RULES  # other rule kinds fire too; this test is about thresholds
            ]
            assert sorted(stored) == sorted(predicted), name  # InfluxDB orders one instant's rows its own way
        faults = influxdb.rows(
            f"SELECT COUNT(fault) FROM temperature WHERE crate = '{crates['probe-fails-open']}' AND fault = 'OPEN'",
            database,
        )
        assert faults[0]["count"] == 24 * 3  # probe1, from 48 h to 72 h at one sample per 20 min
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(10)
        gateway.stop()
