"""The gateway on the NATS cluster: telemetry from the replicated stream to the real influxd, acks back over MQTT."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_helpers import (
    ClusterGateway,
    Mqtt311,
    cluster_gateway_config,
    consumer_pending,
    create_stream,
    partitioned_cluster,
    streaming_cluster,
)
from gateway_helpers import seqs_stored, telemetry
from wait_helpers import wait_until

from cli.cluster_services import NatsCluster
from cli.services import InfluxDB
from coldchain.topics import storage_ack_topic, telemetry_topic

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One cluster for this module's tests (each uses crates of its own; the partitions' consumers are shared)."""
    with streaming_cluster(tmp_path_factory.mktemp("nats-gw")) as cluster:
        yield cluster


def _gateway(tmp_path: Path, cluster: NatsCluster, influx: InfluxDB, database: str) -> ClusterGateway:
    config = cluster_gateway_config(tmp_path, cluster, influx, database, f"gw-{database}")
    return ClusterGateway(config, tmp_path / "gateway.log")


def _acks(listener: Mqtt311, wait: float, seen: list[int] | None = None) -> list[int]:
    """``seen`` extended by the stored_through values received within ``wait`` seconds."""
    seen = [] if seen is None else seen
    seen += [json.loads(payload)["stored_through"] for _, payload in listener.received(wait)]
    return seen


def _all_delivered_none_acked(cluster: NatsCluster, at_least: int) -> int:
    """How many messages the consumers delivered and await acks for, once they have delivered them all (else 0)."""
    pending, unacked = consumer_pending(cluster.urls)
    return unacked if pending == 0 and unacked >= at_least else 0


def test_crate_on_node_a_is_stored_and_acked_on_node_b(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """Telemetry published to node A is stored once each in InfluxDB, acknowledged to JetStream, and the crate's
    storage ack arrives on node B."""
    crate = "C-GWA"
    listener = Mqtt311(cluster.mqtt_brokers[1], f"{crate}-acks")
    assert listener.connected() == 0
    listener.subscribe(storage_ack_topic(crate))
    crate_client = Mqtt311(cluster.mqtt_brokers[0], crate)
    assert crate_client.connected() == 0
    gateway = _gateway(tmp_path, cluster, influxdb, database)
    try:
        for seq in range(20):
            crate_client.publish(telemetry_topic(crate), telemetry(crate, seq))
        acks: list[int] = []
        wait_until(lambda: 19 in _acks(listener, 0.2, acks), 20, "the storage ack of seq 19")
        assert sorted(seqs_stored(influxdb, database, crate)) == list(range(20))
        wait_until(lambda: consumer_pending(cluster.urls) == (0, 0), 10, "everything acknowledged")
    finally:
        gateway.stop()
        crate_client.close()
        listener.close()


def test_nothing_is_acknowledged_to_jetstream_before_influxdb_stored_it(
    cluster: NatsCluster, make_influxdb: Callable[[], InfluxDB], database: str, tmp_path: Path
) -> None:
    """While InfluxDB is down the gateway holds the messages unacknowledged and sends no storage ack;
    when it returns they are stored, acknowledged and the ack reaches the crate."""
    crate = "C-GWB"
    influx = make_influxdb()
    listener = Mqtt311(cluster.mqtt_brokers[2], f"{crate}-acks")
    assert listener.connected() == 0
    listener.subscribe(storage_ack_topic(crate))
    crate_client = Mqtt311(cluster.mqtt_brokers[0], crate)
    assert crate_client.connected() == 0
    gateway = _gateway(tmp_path, cluster, influx, database)
    try:
        influx.stop()
        for seq in range(5):
            crate_client.publish(telemetry_topic(crate), telemetry(crate, seq))
        # the earlier tests acknowledged theirs: what the consumers hold now is this test's
        held = wait_until(lambda: _all_delivered_none_acked(cluster, 5), 10, "all delivered, none acked")
        time.sleep(1.0)  # write retries go on: still nothing acknowledged, no storage ack
        assert consumer_pending(cluster.urls) == (0, held)
        assert _acks(listener, 0.1) == []
        influx.start()
        wait_until(lambda: consumer_pending(cluster.urls) == (0, 0), 20, "acknowledged once stored")
        assert sorted(seqs_stored(influx, database, crate)) == list(range(5))
        acks: list[int] = []
        wait_until(lambda: 4 in _acks(listener, 0.2, acks), 10, "the storage ack of seq 4")
    finally:
        gateway.stop()
        crate_client.close()
        listener.close()


def _send(client: Mqtt311, crate: str, seq: int) -> None:
    """Publish a reading; a node dropping the connection meanwhile is fine: what is not acknowledged is sent again."""
    try:
        client.publish(telemetry_topic(crate), telemetry(crate, seq))
    except RuntimeError:
        time.sleep(0.2)  # paho reconnects on its own


@pytest.mark.fault
def test_gateway_survives_the_death_of_its_node(
    tmp_path: Path, influxdb: InfluxDB, database: str
) -> None:
    """SIGKILL the node the gateway consumes through: it reconnects to another, and every reading published
    before and after (and sent again until acknowledged, as the agent does) is stored exactly once."""
    crate = "C-GWK"
    cluster = partitioned_cluster(tmp_path / "nats").start()  # its own: a node is killed
    try:
        create_stream(cluster.urls)
        gateway = _gateway(tmp_path, cluster, influxdb, database)
        node = next(n for n in cluster.nodes if f"gw-{database}" in n.client_names())
        survivor = next(n for n in cluster.nodes if n is not node)
        address = f"127.0.0.1:{survivor.mqtt_port}"
        listener = Mqtt311(address, f"{crate}-acks")
        crate_client = Mqtt311(address, crate)
        assert listener.connected() == 0
        assert crate_client.connected() == 0
        listener.subscribe(storage_ack_topic(crate))
        for seq in range(10):
            crate_client.publish(telemetry_topic(crate), telemetry(crate, seq))
        node.stop(kill=True)
        for seq in range(10, 20):
            _send(crate_client, crate, seq)
        # What the node PUBACKs while the stream elects a leader may never enter the stream (its capture of an
        # MQTT publish is not acknowledged): like the agent, the crate sends again what no storage ack confirmed.
        acks: list[int] = []
        deadline = time.monotonic() + 40
        while 19 not in _acks(listener, 2.0, acks):
            assert time.monotonic() < deadline, f"no storage ack of seq 19 within 40 s (got {acks})"
            for seq in range(max(acks, default=-1) + 1, 20):
                _send(crate_client, crate, seq)
        assert sorted(seqs_stored(influxdb, database, crate)) == list(range(20))
        gateway.stop()
        crate_client.close()
        listener.close()
    finally:
        cluster.stop()
