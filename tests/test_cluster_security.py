"""The shipped NATS cluster configuration, run for real: TLS, logins, who may publish and read what (MQTT 3.1.1)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from cluster_helpers import (
    ClusterGateway,
    Mqtt311,
    ShippedCluster,
    cluster_gateway_config,
    create_stream,
    start_shipped_cluster,
    stream_messages,
)
from gateway_helpers import seqs_stored, telemetry
from wait_helpers import wait_until

from cli.services import InfluxDB
from coldchain.topics import storage_ack_topic, telemetry_topic

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedCluster]:
    """Three nodes on config/nats/node.conf with crates C-A and C-B, staff alice, and the gateway; the stream made."""
    shipped = start_shipped_cluster(tmp_path_factory.mktemp("nats-shipped"), ("C-A", "C-B"), ("alice",))
    try:
        create_stream(shipped.cluster.urls, "coldchain-gateway", shipped.password("coldchain-gateway"), shipped.ca)
        yield shipped
    finally:
        shipped.cluster.stop()


def _login(shipped: ShippedCluster, user: str | None, node: int = 0) -> Mqtt311:
    address = shipped.cluster.mqtt_brokers[node]
    password = shipped.password(user) if user else None
    return Mqtt311(address, user or "anonymous", user, password, ca=shipped.ca)


def _stream_payloads(shipped: ShippedCluster, expected: bytes) -> set[bytes]:
    """The stream's payloads once ``expected`` is among them (at most 10 s)."""
    messages = stream_messages(
        shipped.cluster.urls,
        "coldchain-gateway",
        shipped.password("coldchain-gateway"),
        shipped.ca,
        until=lambda got: any(payload == expected for _, payload in got),
    )
    return {payload for _, payload in messages}


def test_anonymous_mqtt_client_is_refused(shipped: ShippedCluster) -> None:
    """An MQTT client without credentials is refused at CONNECT."""
    client = _login(shipped, None)
    assert client.connected() != 0
    client.close()


def test_crate_cannot_publish_under_another_crates_topics(shipped: ShippedCluster) -> None:
    """Crate A's telemetry on crate B's topic never reaches the stream; on its own topic it does."""
    crate_a = _login(shipped, "C-A", node=1)
    assert crate_a.connected() == 0
    crate_a.publish("coldchain/v1/crates/C-B/telemetry", b"forged")
    crate_a.publish("coldchain/v1/crates/C-B/status", b"forged")
    crate_a.close()
    crate_a = _login(shipped, "C-A", node=1)  # a refused publish may have cost the connection
    assert crate_a.connected() == 0
    crate_a.publish("coldchain/v1/crates/C-A/telemetry", b"genuine")
    crate_a.close()
    payloads = _stream_payloads(shipped, b"genuine")
    assert b"genuine" in payloads
    assert b"forged" not in payloads


def test_staff_cannot_publish_telemetry(shipped: ShippedCluster) -> None:
    """Staff's telemetry never reaches the stream; staff's acknowledgement does."""
    alice = _login(shipped, "staff.alice", node=2)
    assert alice.connected() == 0
    alice.publish("coldchain/v1/crates/C-A/telemetry", b"staff-telemetry")
    alice.close()
    alice = _login(shipped, "staff.alice", node=2)
    assert alice.connected() == 0
    alice.publish("coldchain/v1/acks/C-A/cryo_critical/probe1", b"staff-ack")
    alice.close()
    payloads = _stream_payloads(shipped, b"staff-ack")
    assert b"staff-ack" in payloads
    assert b"staff-telemetry" not in payloads


def test_crate_reads_only_its_own_storage_ack(shipped: ShippedCluster) -> None:
    """A crate may subscribe to its own storage acks (and receives them), not to another crate's."""
    crate_a = _login(shipped, "C-A", node=0)
    assert crate_a.connected() == 0
    assert crate_a.subscribe("coldchain/v1/crates/C-B/ack") == 128
    assert crate_a.subscribe("coldchain/v1/crates/C-A/ack") == 1
    gateway = _login(shipped, "coldchain-gateway", node=1)
    assert gateway.connected() == 0
    gateway.publish("coldchain/v1/crates/C-B/ack", b'{"for":"B"}')
    gateway.publish("coldchain/v1/crates/C-A/ack", b'{"for":"A"}')
    assert crate_a.received(2.0) == [("coldchain/v1/crates/C-A/ack", b'{"for":"A"}')]
    gateway.close()
    crate_a.close()


def test_staff_read_alarms_but_not_telemetry(shipped: ShippedCluster) -> None:
    """Staff receive the gateway's alarms and may not subscribe to crates' telemetry."""
    alice = _login(shipped, "staff.alice", node=0)
    assert alice.connected() == 0
    assert alice.subscribe("coldchain/v1/crates/+/telemetry") == 128
    assert alice.subscribe("coldchain/v1/alarms/#") == 1
    gateway = _login(shipped, "coldchain-gateway", node=2)
    assert gateway.connected() == 0
    gateway.publish("coldchain/v1/alarms/C-A/cryo_critical/probe1", b'{"state":"active"}')
    assert alice.received(2.0) == [("coldchain/v1/alarms/C-A/cryo_critical/probe1", b'{"state":"active"}')]
    gateway.close()
    alice.close()


def test_crate_login_cannot_use_nats(shipped: ShippedCluster) -> None:
    """A crate's login is for MQTT only: a NATS client with it is refused."""

    async def attempt() -> None:
        tls = ssl.create_default_context(cafile=str(shipped.ca))
        nc = await nats.connect(
            shipped.cluster.urls[:1], user="C-A", password=shipped.password("C-A"), tls=tls, allow_reconnect=False
        )
        await nc.close()

    with pytest.raises(nats.errors.Error, match=r"[Aa]uthorization"):
        asyncio.run(asyncio.wait_for(attempt(), 10))


def test_gateway_serves_partitions_under_the_shipped_rights(
    shipped: ShippedCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """The gateway's provisioned login, over TLS, may do all its work on the shipped rights: take leases, load
    crate state, read a partition's consumer, save state and publish the storage ack the crate receives."""
    config = cluster_gateway_config(tmp_path, shipped.cluster, influxdb, database, f"gw-{database}")
    login = (
        '[mqtt]\nusername = "coldchain-gateway"\n'
        f"password_file = {json.dumps(str(shipped.creds / 'gateway-mqtt-password'))}\n"
        f"ca_file = {json.dumps(str(shipped.ca))}\n"
    )
    config.write_text(config.read_text().replace("[mqtt]\n", login).replace('"nats://', '"tls://'))
    gateway = ClusterGateway(config, tmp_path / "gateway.log")
    crate = _login(shipped, "C-A", node=1)
    try:
        assert crate.connected() == 0
        assert crate.subscribe(storage_ack_topic("C-A")) == 1
        for seq in range(5):
            crate.publish(telemetry_topic("C-A"), telemetry("C-A", seq))
        acks: list[int] = []

        def stored_through_4() -> bool:
            acks.extend(json.loads(payload)["stored_through"] for _, payload in crate.received(0.2) if payload)
            return 4 in acks

        wait_until(stored_through_4, 20, "C-A's storage ack of seq 4")
        assert sorted(seqs_stored(influxdb, database, "C-A")) == list(range(5))
        logs = "".join(node.log.read_text(errors="replace") for node in shipped.cluster.nodes).splitlines()
        assert [line for line in logs if "Violation" in line and 'User "coldchain-gateway"' in line] == []
        assert gateway.stop() == 0
    finally:
        crate.close()
        gateway.stop()
