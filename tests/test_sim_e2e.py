"""A scenario end to end: sim (accelerated, board clock) -> agent -> broker -> gateway -> InfluxDB and alarms."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from gateway_helpers import Client, GatewayProcess, count, gateway_config, wait_until
from sim_helpers import running_sim

from cli.services import InfluxDB, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "config" / "scenarios" / "cryo-ln2-out-day3.toml"
DAY_MS = 86_400_000


def _agent_config(directory: Path, crate: str, broker: Mosquitto, device: str) -> Path:
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
sensors = ["probe1"]
time_source = "board"
tick_timeout_s = 0.2
"""
    )
    return path


@pytest.mark.integration
def test_ln2_running_out_on_day_3_reaches_influxdb_and_raises_the_cryo_alarms(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Four simulated days in seconds: every 5-min sample stored at board time; warning then critical from day 3."""
    crate = f"{crate_prefix}-ln2"
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    alarms = Client(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    epoch = time.time_ns() // 1_000_000 - 5 * DAY_MS  # the shipment is over: its timestamps lie in the past
    sim_args = ("--scenario", str(SCENARIO), "--period", "300", "--speed", "100000", "--epoch-ms", str(epoch))
    agent: subprocess.Popen[bytes] | None = None
    try:
        with running_sim(*sim_args, "--seed", "3") as sim, (tmp_path / "agent.log").open("wb") as agent_log:
            config = _agent_config(tmp_path, crate, mosquitto, sim.device)
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge", "--config", str(config)], stdout=agent_log, stderr=agent_log, cwd=ROOT
            )
            assert sim.process.wait(60) == 0  # the sim waited for the agent, then ran the 4 days and drained
        ticks = 4 * 24 * 12
        wait_until(lambda: count(influxdb, database, crate) >= ticks, timeout=60, what=f"{ticks} stored readings")
        assert count(influxdb, database, crate) == ticks
        first, last = (
            influxdb.rows(f"SELECT {f}(value_c) FROM temperature WHERE crate = '{crate}'", database)[0]
            for f in ("FIRST", "LAST")
        )
        assert first["time"] == epoch
        assert last["time"] == epoch + 4 * DAY_MS - 300_000
        assert -184.0 < first["first"] < -182.0  # type: ignore[operator]  # LN2 vapour of a 30 % charge
        wait_until(lambda: len(alarms.received()) >= 2, timeout=20, what="two alarms on MQTT")
        time.sleep(0.3)  # a third alarm (there must be none) would arrive right behind
        raised = alarms.received()
        assert [(a["rule"], a["state"]) for a in raised] == [("warning_high", "active"), ("critical_high", "active")]
        critical = raised[1]
        assert 72 < (critical["ts"] - epoch) / 3_600_000 < 80
        assert critical["value_c"] > -150.0
        stored = influxdb.rows(f"SELECT * FROM alarm WHERE crate = '{crate}'", database)
        assert sorted((row["rule"], row["state"], row["seq"]) for row in stored) == sorted(
            (a["rule"], a["state"], a["seq"]) for a in raised
        )
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        alarms.close()
        gateway.stop()
