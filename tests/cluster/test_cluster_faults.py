"""Crates on the NATS cluster: an agent moves to another node when its node is SIGKILLed; nothing is lost."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import (
    ClusterGateway,
    Mqtt311,
    cluster_agent_config,
    cluster_gateway_config,
    stream_messages,
    streaming_cluster,
)
from edge_helpers import AgentProcess, PtyBoard
from gateway_helpers import seqs_stored
from wait_helpers import wait_until

from cli.cluster_services import NatsCluster, NatsNode
from cli.services import InfluxDB
from coldchain.topics import status_topic

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.cluster]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster of this test's own (it kills a node), with the telemetry stream."""
    with streaming_cluster(tmp_path / "nats") as cluster:
        yield cluster


def _seqs(cluster: NatsCluster, crate: str, count: int) -> list[int]:
    """The seqs of ``crate``'s telemetry in the stream, once all of 0..count-1 are there (or after 20 s)."""
    subject = f".coldchain.v1.crates.{crate}.telemetry"  # in its partition: cc.p.<k>.coldchain...

    def seqs(messages: list[tuple[str, bytes]]) -> list[int]:
        return [json.loads(payload)["seq"] for s, payload in messages if s.endswith(subject)]

    return seqs(stream_messages(cluster.urls, until=lambda got: set(seqs(got)) >= set(range(count)), wait=30))


def _node_of(agent: AgentProcess, cluster: NatsCluster, after: int = 0) -> NatsNode:
    """The node the agent's ``after``-th connection went to (from its log)."""
    ports = re.findall(r"connected to broker 127\.0\.0\.1:(\d+)", agent.text())
    return next(node for node in cluster.nodes if node.mqtt_port == int(ports[after]))


def _retained_status(node: NatsNode, crate: str) -> str:
    """The state of the crate's retained status, as a new subscriber on ``node`` receives it."""
    watcher = Mqtt311(f"127.0.0.1:{node.mqtt_port}", f"watch-{time.monotonic_ns()}")
    try:
        assert watcher.connected() == 0
        # QoS 0: no JetStream consumer to create, which can take seconds while the cluster recovers from a kill
        watcher.subscribe(status_topic(crate), qos=0)
        got = watcher.received(1.5)
        return str(json.loads(got[-1][1])["state"]) if got else "none"
    finally:
        watcher.close()


def test_agent_moves_to_another_node_and_loses_nothing(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path, board: PtyBoard
) -> None:
    """SIGKILL the agent's node mid-stream: the agent moves to another node, every reading reaches the stream and
    is stored once by the JetStream gateway, the spool is pruned by its storage ack, the crate's status is online
    on the new node, and its will says offline when the agent dies in turn."""
    crate = "C-FAIL"
    config = cluster_gateway_config(tmp_path, cluster, influxdb, database, f"gw-{database}")
    gateway = ClusterGateway(config, tmp_path / "gateway.log")
    agent = AgentProcess(cluster_agent_config(tmp_path / "agent", crate, cluster.mqtt_brokers, board.device))
    try:
        agent.wait_log("connected to broker")
        agent.wait_log("opened")
        first = _node_of(agent, cluster)
        for i in range(10):
            board.tick({"probe1": -170.0 + i})
            time.sleep(0.05)
        first.stop(kill=True)
        for i in range(10, 30):  # taken while the agent looks for another node
            board.tick({"probe1": -170.0 + i})
            time.sleep(0.05)
        wait_until(lambda: agent.text().count("connected to broker") >= 2, 30, "a connection to another node")
        second = _node_of(agent, cluster, after=1)
        assert second is not first
        for i in range(30, 40):
            board.tick({"probe1": -170.0 + i})
            time.sleep(0.05)
        assert sorted(set(_seqs(cluster, crate, 40))) == list(range(40))
        spool = tmp_path / "agent" / "spool.sqlite"
        # the ack subscription waits for the new node's JetStream consumer, refused while the cluster recovers
        # from the kill and asked again every refused_retry_s (docs/cluster.md): 10-25 s seen on a loaded machine
        wait_until(lambda: _spooled(spool) == 0, 60, "the spool pruned by the gateway's storage ack")
        stored = seqs_stored(influxdb, database, crate)
        assert sorted(stored) == list(range(40))  # each reading stored exactly once
        wait_until(lambda: _retained_status(second, crate) == "online", 15, "the retained online status")
        agent.kill()
        wait_until(lambda: _retained_status(second, crate) == "offline", 20, "the offline will")
    finally:
        agent.stop()
        gateway.stop()


def _spooled(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0])
