"""Faults on real services mid-stream: each run ends with every sent reading stored once and gaps exactly where
messages were withheld."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_helpers import (
    Feeder,
    GatewayProcess,
    gaps_stored,
    gateway_config,
    seqs_stored,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

N = 300
WITHHELD = {*range(41, 46), *range(201, 204)}
EXPECTED_GAPS = [(41, 45, 5, "open"), (201, 203, 3, "open")]
SENT = [s for s in range(1, N + 1) if s not in WITHHELD]


def _config(tmp_path: Path, broker, influx, database: str) -> Path:
    return gateway_config(tmp_path, broker, influx, database, '[state]\nfile = "state.sqlite"\n')


def _assert_exactly_once(influx, database: str, crate: str) -> None:
    wait_until(lambda: len(seqs_stored(influx, database, crate)) >= len(SENT), 30, f"{len(SENT)} points")
    assert seqs_stored(influx, database, crate) == SENT
    assert gaps_stored(influx, database, crate) == EXPECTED_GAPS


def test_broker_restart_mid_stream(tmp_path: Path, make_mosquitto, influxdb, database, crate_prefix) -> None:
    """The broker stops and starts again while readings flow: nothing lost, nothing twice."""
    broker = make_mosquitto()
    crate = f"{crate_prefix}-B"
    gateway = GatewayProcess(_config(tmp_path, broker, influxdb, database), tmp_path / "gateway.log")
    feeder = Feeder(broker, crate, SENT)
    wait_until(lambda: len(seqs_stored(influxdb, database, crate)) >= 60, 10, "stream flowing")
    broker.stop()
    broker.start()
    feeder.wait()
    _assert_exactly_once(influxdb, database, crate)
    assert gateway.stop() == 0


def test_influxdb_stopped_and_restarted(tmp_path: Path, mosquitto, make_influxdb, crate_prefix) -> None:
    """influxd is down for a while mid-stream: writes are retried, everything lands once it returns."""
    influx = make_influxdb()
    crate = f"{crate_prefix}-I"
    gateway = GatewayProcess(_config(tmp_path, mosquitto, influx, "coldchain"), tmp_path / "gateway.log")
    feeder = Feeder(mosquitto, crate, SENT)
    wait_until(lambda: len(seqs_stored(influx, "coldchain", crate)) >= 60, 10, "stream flowing")
    influx.stop()
    feeder.wait()
    wait_until(lambda: "write of" in gateway.stderr(), 10, "a failed write logged")
    influx.start()
    _assert_exactly_once(influx, "coldchain", crate)
    assert gateway.stop() == 0


def test_gateway_killed_mid_stream_and_restarted(tmp_path: Path, mosquitto, influxdb, database, crate_prefix) -> None:
    """SIGKILL while readings flow; after a restart every reading is stored once and the gaps are exact."""
    crate = f"{crate_prefix}-K"
    config = _config(tmp_path, mosquitto, influxdb, database)
    first = GatewayProcess(config, tmp_path / "gateway-1.log")
    feeder = Feeder(mosquitto, crate, SENT)
    wait_until(lambda: len(seqs_stored(influxdb, database, crate)) >= 60, 10, "stream flowing")
    first.stop(kill=True)
    feeder.wait()
    second = GatewayProcess(config, tmp_path / "gateway-2.log")
    _assert_exactly_once(influxdb, database, crate)
    assert second.stop() == 0
