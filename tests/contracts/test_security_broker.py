"""The shipped broker configuration, run for real: who may connect, publish and read what."""

from __future__ import annotations

import json
import queue
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gateway_helpers import Client as Watcher
from gateway_helpers import GatewayProcess, count, gateway_config, telemetry
from locked_broker import SHIPPED, LockedBroker, start_locked_broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from wait_helpers import wait_until

from cli.provision import main as provision
from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedBroker]:
    """The shipped broker configuration with crates C-A and C-B, staff alice and bob, and the gateway."""
    locked = start_locked_broker(tmp_path_factory.mktemp("locked-broker"), ("C-A", "C-B"), ("alice", "bob"))
    yield locked
    locked.broker.stop()


def _password(creds: Path, user: str) -> str:
    if user.startswith("staff."):
        return (creds / f"{user}.password").read_text().strip()
    names = {"C-A": "C-A/mqtt-password", "C-B": "C-B/mqtt-password"}
    return (creds / names.get(user, "gateway-mqtt-password")).read_text().strip()


class Client:
    """A paho MQTT v5 client that records what it receives and how its connect went."""

    def __init__(self, b: LockedBroker, user: str | None, tls: bool = False) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user or "", protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, _password(b.creds, user))
        if tls:
            self.client.tls_set(ca_certs=str(b.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc.value)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.connect(b.broker.host, b.tls_port if tls else b.broker.port)
        self.client.loop_start()

    def connected(self) -> int:
        """The CONNACK reason code (0: accepted)."""
        return self.connack.get(timeout=5)

    def subscribe(self, topic: str) -> None:
        done = queue.Queue[int]()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: done.put(rcs[0].value)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, properties=Properties(mqtt.PacketTypes.PUBLISH)).wait_for_publish(5)

    def received(self, wait: float = 1.0) -> list[tuple[str, bytes]]:
        """Everything received within ``wait`` seconds."""
        out, deadline = [], time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                break
            out.append((m.topic, m.payload))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def gateway(locked_broker: LockedBroker) -> Iterator[Client]:
    """The gateway's login, subscribed to all telemetry."""
    client = Client(locked_broker, "coldchain-gateway")
    assert client.connected() == 0
    client.subscribe("coldchain/v1/crates/+/telemetry")
    yield client
    client.close()


def test_anonymous_client_is_refused(locked_broker: LockedBroker) -> None:
    """A client without credentials is refused at CONNECT."""
    client = Client(locked_broker, None)
    assert client.connected() != 0
    client.close()


def test_crate_cannot_publish_as_another_crate(locked_broker: LockedBroker, gateway: Client) -> None:
    """Crate A's telemetry on its own topic arrives; on crate B's topic it never reaches the gateway."""
    crate_a = Client(locked_broker, "C-A")
    assert crate_a.connected() == 0
    crate_a.publish("coldchain/v1/crates/C-B/telemetry", b"forged")
    crate_a.publish("coldchain/v1/crates/C-A/telemetry", b"genuine")
    assert gateway.received() == [("coldchain/v1/crates/C-A/telemetry", b"genuine")]
    crate_a.close()


def test_crate_reads_only_its_own_storage_ack(locked_broker: LockedBroker) -> None:
    """A crate receives its own storage acknowledgements and not another crate's."""
    crate_a = Client(locked_broker, "C-A")
    assert crate_a.connected() == 0
    crate_a.subscribe("coldchain/v1/crates/+/ack")
    publisher = Client(locked_broker, "coldchain-gateway")
    assert publisher.connected() == 0
    publisher.publish("coldchain/v1/crates/C-B/ack", b"b")
    publisher.publish("coldchain/v1/crates/C-A/ack", b"a")
    assert crate_a.received() == [("coldchain/v1/crates/C-A/ack", b"a")]
    crate_a.close()
    publisher.close()


def test_staff_can_acknowledge_but_not_publish_telemetry(locked_broker: LockedBroker, gateway: Client) -> None:
    """A staff login reaches the acks topic and no crate's telemetry."""
    gateway.subscribe("coldchain/v1/acks/#")
    staff = Client(locked_broker, "staff.alice")
    assert staff.connected() == 0
    staff.publish("coldchain/v1/crates/C-A/telemetry", b"forged")
    staff.publish("coldchain/v1/acks/C-A/critical_high/probe1", b"ack")
    assert gateway.received() == [("coldchain/v1/acks/C-A/critical_high/probe1", b"ack")]
    staff.close()


def test_staff_login_cannot_publish_under_its_own_crate_topics(locked_broker: LockedBroker, gateway: Client) -> None:
    """The crate patterns match every login: the deny a staff login gets stops staff.alice/telemetry at the broker."""
    gateway.subscribe("coldchain/v1/crates/+/status")
    gateway.subscribe("coldchain/v1/crates/+/events")
    staff, crate_a = Client(locked_broker, "staff.alice"), Client(locked_broker, "C-A")
    assert staff.connected() == crate_a.connected() == 0
    for kind in ("telemetry", "status", "events"):
        staff.publish(f"coldchain/v1/crates/staff.alice/{kind}", b"posing as a crate")
    crate_a.publish("coldchain/v1/crates/C-A/status", b"genuine")
    assert gateway.received() == [("coldchain/v1/crates/C-A/status", b"genuine")]
    staff.close()
    crate_a.close()


def test_staff_login_hears_the_gateways_refusals_and_cannot_forge_one(locked_broker: LockedBroker) -> None:
    """A provisioned staff login reads coldchain/v1/rejected (where 'coldchain ack' hears a refusal); a refusal it
    publishes itself reaches nobody."""
    staff, other, service = (Client(locked_broker, u) for u in ("staff.alice", "staff.bob", "coldchain-gateway"))
    assert staff.connected() == other.connected() == service.connected() == 0
    staff.subscribe("coldchain/v1/rejected")
    other.publish("coldchain/v1/rejected", b"forged refusal")
    service.publish("coldchain/v1/rejected", b"genuine refusal")
    assert staff.received() == [("coldchain/v1/rejected", b"genuine refusal")]
    for client in (staff, other, service):
        client.close()


def test_gateway_login_cannot_publish_under_its_own_crate_topics(locked_broker: LockedBroker) -> None:
    """The gateway's login has the same deny: its status under crates/coldchain-gateway/ reaches no reader."""
    reader, service = Client(locked_broker, "staff.bob"), Client(locked_broker, "coldchain-gateway")
    crate_a = Client(locked_broker, "C-A")
    assert reader.connected() == service.connected() == crate_a.connected() == 0
    reader.subscribe("coldchain/v1/crates/+/status")
    service.publish("coldchain/v1/crates/coldchain-gateway/status", b"posing as a crate")
    crate_a.publish("coldchain/v1/crates/C-A/status", b"genuine")
    assert reader.received() == [("coldchain/v1/crates/C-A/status", b"genuine")]
    for client in (reader, service, crate_a):
        client.close()


def test_gateway_rejects_a_staff_login_posing_as_a_crate(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """Where a broker lets them through (an ACL without the deny), a real gateway refuses staff.* and coldchain-*."""
    staff, service, crate = f"staff.{crate_prefix}", f"coldchain-{crate_prefix}", f"{crate_prefix}-ok"
    posing = [
        (f"coldchain/v1/crates/{staff}/telemetry", telemetry(staff, 1)),
        (f"coldchain/v1/crates/{staff}/status", json.dumps({"v": 1, "crate": staff, "state": "online"})),
        (f"coldchain/v1/crates/{staff}/events", json.dumps({"v": 1, "crate": staff, "ts": 1, "event": "lid_open"})),
        (f"coldchain/v1/crates/{service}/telemetry", telemetry(service, 1)),
    ]
    query = f"SELECT crate, topic FROM rejected WHERE reason = 'reserved_crate' AND crate =~ /{crate_prefix}$/"
    watcher = Watcher(mosquitto, ["coldchain/v1/rejected", f"coldchain/v1/crates/{staff}/ack"])
    with GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log"):
        publisher = Watcher(mosquitto)
        for topic, payload in posing:
            publisher.publish(topic, payload if isinstance(payload, bytes) else payload.encode())
            # one at a time: two rejects of one crate and reason in the same millisecond are one point
            wait_until(lambda t=topic: [m for m in watcher.received("coldchain/v1/rejected") if m["topic"] == t])
        publisher.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 1))
        wait_until(lambda: len(influxdb.rows(query, database)) == 4, 20, "four reserved_crate rejects stored")
        wait_until(lambda: count(influxdb, database, crate) == 1, 10, "the genuine crate's reading")
        publisher.close()
    stored = sorted((str(r["crate"]), str(r["topic"])) for r in influxdb.rows(query, database))
    assert stored == sorted((topic.split("/")[3], topic) for topic, _ in posing)
    refused = [(m["crate"], m["reason"], m["topic"]) for m in watcher.received("coldchain/v1/rejected")]
    assert sorted(refused) == sorted((topic.split("/")[3], "reserved_crate", topic) for topic, _ in posing)
    assert not watcher.received(f"coldchain/v1/crates/{staff}/ack")  # no crate state: nothing acknowledged
    assert count(influxdb, database, staff) == count(influxdb, database, service) == 0
    watcher.close()


def test_tls_listener_accepts_a_crate(locked_broker: LockedBroker, gateway: Client) -> None:
    """A crate connects over TLS, verifying the broker against the CA, and its telemetry arrives."""
    crate_b = Client(locked_broker, "C-B", tls=True)
    assert crate_b.connected() == 0
    crate_b.publish("coldchain/v1/crates/C-B/telemetry", b"over tls")
    assert gateway.received() == [("coldchain/v1/crates/C-B/telemetry", b"over tls")]
    crate_b.close()


def test_oversized_message_is_dropped_by_the_broker(locked_broker: LockedBroker, gateway: Client) -> None:
    """A payload over message_size_limit never reaches the gateway; normal traffic still does."""
    crate_a, crate_b = Client(locked_broker, "C-A"), Client(locked_broker, "C-B")
    assert crate_a.connected() == crate_b.connected() == 0
    crate_a.client.publish("coldchain/v1/crates/C-A/telemetry", b"x" * 20_000, qos=1)
    crate_b.publish("coldchain/v1/crates/C-B/telemetry", b"small")
    assert gateway.received() == [("coldchain/v1/crates/C-B/telemetry", b"small")]
    crate_a.close()
    crate_b.close()


def test_provisioned_secrets_are_private(locked_broker: LockedBroker) -> None:
    """Every secret provisioning wrote is readable by its owner only."""
    secrets = [*locked_broker.creds.rglob("*password*"), *locked_broker.creds.rglob("signing.key")]
    assert secrets
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("crate", ["C+1", "C#", "a/b", "staff.mallory", "coldchain-gateway", "coldchain-board", ""])
def test_provisioning_refuses_unsafe_or_reserved_crate_ids(tmp_path: Path, crate: str) -> None:
    """Wildcards, separators and reserved names can never become a crate login."""
    assert (
        provision(["crate", crate, "--broker-dir", str(tmp_path), "--keys-dir", str(tmp_path), "--out", str(tmp_path)])
        == 2
    )
    assert not (tmp_path / "passwd").exists()


def test_provisioned_agent_config_loads_in_the_agent(locked_broker: LockedBroker, tmp_path: Path) -> None:
    """The agent.toml provisioning writes is accepted by the agent as it is, key and login included."""
    import shutil

    from edge.config import load_config

    crate_dir = tmp_path / "C-A"
    shutil.copytree(locked_broker.creds / "C-A", crate_dir)
    shutil.copy(locked_broker.ca, crate_dir / "ca.crt")
    shutil.copy(SHIPPED.parent / "profiles.toml", crate_dir / "profiles.toml")
    config = load_config(crate_dir / "agent.toml")
    assert (config.crate, config.mqtt.username, config.profile_name) == ("C-A", "C-A", "cryo")
    assert config.signing_key == bytes.fromhex((crate_dir / "signing.key").read_text())
    assert config.mqtt.password_file is not None
    assert config.mqtt.password_file.read_text().strip() == _password(locked_broker.creds, "C-A")
