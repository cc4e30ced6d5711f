"""The agent with the real gateway: its storage acks are what empties the spool."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_helpers import AgentProcess, InProcessAgent, PtyBoard, agent_config, wait_until, write_config
from gateway_helpers import (
    GatewayProcess,
    count,
    gateway_config,
    seqs_stored,
)

from cli.services import InfluxDB, Mosquitto
from coldchain.sentences import TemperatureSentence

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


def test_bursts_the_agent_reads_in_one_go_are_each_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, board: PtyBoard
) -> None:
    """A Pi that fell behind reads several of its board's bursts at once: every one is stored, none overwritten
    by another stamped in the same millisecond (InfluxDB keeps one point per series and time)."""
    crate = f"{crate_prefix}-BURST"
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    agent = AgentProcess(write_config(tmp_path / "agent", crate, mosquitto, board.device))
    try:
        agent.wait_log("opened")
        burst = b"".join(TemperatureSentence(s, -170.0 + i).encode() for i in range(8) for s in ("probe1", "probe2"))
        board.write(burst)  # eight periods' sentences in one write: read together
        agent.wait_log("gateway stored through seq 7", 30)
        assert sorted(seqs_stored(influxdb, database, crate)) == sorted(list(range(8)) * 2)  # one point a sensor
    finally:
        agent.stop()
        gateway.stop()
