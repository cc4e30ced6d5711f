"""Self-monitoring: measurement 'gateway' in InfluxDB and the health command."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gateway_helpers import (
    ROOT,
    Client,
    GatewayProcess,
    count,
    gateway_config,
    wait_until,
)

pytestmark = pytest.mark.integration

MONITORING = '[monitoring]\ninterval = "0.2s"\nhealth_file = "health.json"\n'


def _health(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "--health"],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
        check=False,
    )


def test_own_figures_are_written_to_measurement_gateway(tmp_path, mosquitto, influxdb, database, crate_prefix):
    """Readings received, rejects by reason and connection state appear in measurement gateway."""
    config = gateway_config(tmp_path, mosquitto, influxdb, database, MONITORING)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    client = Client(mosquitto)
    crate = f"{crate_prefix}-M"
    client.send(crate, [1, 2, 3])
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", b"{}")
    query = (
        f"SELECT last(readings), last(rejected_version), last(connected) FROM gateway WHERE gateway = 'gw-{database}'"
    )

    def figures() -> tuple[object, ...] | None:
        rows = influxdb.rows(query, database)
        return (rows[0]["last"], rows[0]["last_1"], rows[0]["last_2"]) if rows else None

    wait_until(lambda: figures() == (3, 1, True), 10, "figures in measurement gateway")
    assert gateway.stop() == 0
    client.close()


def test_health_command_says_healthy_then_stale(tmp_path, mosquitto, influxdb, database) -> None:
    """`--health` exits 0 with the figures while the gateway runs, 1 naming the problem once it stopped."""
    config = gateway_config(tmp_path, mosquitto, influxdb, database, MONITORING)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    wait_until((tmp_path / "health.json").exists, 5, "health file")
    wait_until(lambda: json.loads((tmp_path / "health.json").read_text())["connected"], 5, "connected in health")
    healthy = _health(config)
    assert healthy.returncode == 0, healthy.stdout
    assert json.loads(healthy.stdout)["connected"] is True
    assert gateway.stop() == 0
    time.sleep(0.8)  # three monitoring intervals without a report
    stale = _health(config)
    assert stale.returncode == 1
    assert "UNHEALTHY: health file is" in stale.stdout


def test_a_silent_crate_is_forgotten_unless_an_alarm_of_it_is_open(
    tmp_path, make_mosquitto, influxdb, database, crate_prefix
) -> None:
    """After [state] forget_after of silence a crate leaves memory and the state file; one with an active
    alarm stays; a forgotten crate that speaks again is taken as a new shipment, not as a duplicate."""
    mosquitto = make_mosquitto()  # its own: on the session broker other tests' crates come and go
    extra = MONITORING + '[state]\nfile = "state.sqlite"\nforget_after = "2s"\n'
    config = gateway_config(tmp_path, mosquitto, influxdb, database, extra)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    client = Client(mosquitto)
    quiet, warm = f"{crate_prefix}-Q", f"{crate_prefix}-W"
    client.send(quiet, [1, 2, 3])
    client.send(warm, [1], value=-140.0)  # critical_high: active until someone clears it
    wait_until(lambda: count(influxdb, database, quiet) == 3 and count(influxdb, database, warm) == 1, 10, "stored")
    health = tmp_path / "health.json"

    def figures() -> dict[str, int]:
        return json.loads(health.read_text()) if health.exists() else {}

    wait_until(lambda: f"forgot 1 crates silent for 2 s: {quiet}" in gateway.stderr(), 20, "the quiet crate forgotten")
    wait_until(lambda: figures().get("crates") == 1, 5, "one crate left in the figures")
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        saved = {row[0] for row in db.execute("SELECT id FROM crate")}
    assert quiet not in saved
    assert warm in saved
    client.send(quiet, [1])  # seq 1 again: were the crate remembered, a duplicate
    wait_until(lambda: figures().get("received", 0) >= 5, 10, "the fifth message received")
    assert figures()["duplicates"] == 0
    assert gateway.stop() == 0
    client.close()
