"""The agent with the real gateway: its storage acks are what empties the spool."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_helpers import InProcessAgent, agent_config, wait_until
from gateway_helpers import (
    GatewayProcess,
    count,
    gateway_config,
)

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

TS = 1_795_000_000_000


def test_gateway_acks_empty_the_spool_once_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Readings spooled by the agent reach InfluxDB, and the gateway's stored_through prunes every one."""
    crate = f"{crate_prefix}-GW"
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    run = InProcessAgent(agent_config(tmp_path / "agent", crate, mosquitto))
    try:
        for i in range(20):
            run.sample(TS + i * 1000, probe1=-170.0 + i / 10)
        wait_until(lambda: count(influxdb, database, crate) == 20, 20, "20 readings in InfluxDB")
        wait_until(lambda: len(run.agent.spool) == 0, 10, "spool emptied by the gateway's acks")
        assert run.agent.spool.next_seq == 20
    finally:
        run.stop()
        gateway.stop()
