"""Scenarios end to end: sim (accelerated, board clock) -> agent -> broker -> gateway -> InfluxDB and alarms."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_helpers import Client, GatewayProcess, count, gateway_config, wait_until
from sim_helpers import running_sim

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
        with running_sim(*args, "--seed", "3") as sim, (tmp_path / "agent.log").open("wb") as agent_log:
            sensors = ["probe1", "probe2"] if "probe-fails" in scenario else ["probe1"]
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
        wait_until(
            lambda: len(influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)) >= 2,
            timeout=20,
            what="two alarms in InfluxDB",
        )
        stored = influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)
        assert [(row["rule"], row["state"]) for row in stored] == [
            ("warning_high", "active"),
            ("critical_high", "active"),
        ]
        critical = stored[1]
        assert 72 < (critical["time"] - ship.epoch) / HOUR_MS < 80  # type: ignore[operator]
        assert critical["value_c"] > -150.0  # type: ignore[operator]


@pytest.mark.integration
def test_probe_failing_open_is_stored_as_a_fault_and_raises_no_temperature_alarm(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """probe1 breaks after 48 h: its readings from then on are stored as fault OPEN; no threshold alarm at all."""
    crate = f"{crate_prefix}-open"
    with _shipped(tmp_path, mosquitto, influxdb, database, crate, "probe-fails-open.toml", "--period", "1200") as ship:
        ticks = 3 * 24 * 3
        wait_until(lambda: count(influxdb, database, crate) >= 2 * ticks, timeout=60, what="every reading stored")
        faults = influxdb.rows(
            f"SELECT fault, seq FROM temperature WHERE crate = '{crate}' AND sensor = 'probe1' AND fault = 'OPEN'",
            database,
        )
        assert len(faults) == ticks // 3  # the last of the three days
        assert faults[0]["time"] == ship.epoch + 48 * HOUR_MS
        good = influxdb.rows(f"SELECT COUNT(value_c) FROM temperature WHERE crate = '{crate}'", database)
        assert good[0]["count"] == 2 * ticks - ticks // 3
        assert influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database) == []
        assert ship.alarms.received() == []
