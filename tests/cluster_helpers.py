"""The NATS cluster in tests: the shipped configuration moved into a temp dir, MQTT 3.1.1 clients, stream reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nats.errors
import nats.js.errors
import paho.mqtt.client as mqtt
from gateway_helpers import ROOT, GatewayProcess, gateway_config
from locked_broker import make_ca
from paho.mqtt.enums import CallbackAPIVersion

from cli.cluster_auth import main as cluster_auth
from cli.cluster_services import NatsCluster, NatsNode
from cli.provision import main as provision
from cli.services import InfluxDB
from gateway.jetstream_stream import STREAM, connect, durable_of, ensure_stream, mappings
from gateway.leases import LEASES

# few partitions and short leases: the tests' hand-overs take seconds, not the production default's
TEST_PARTITIONS = 4
TEST_LEASE_TTL_S = 3.0
TEST_ACK_WAIT_S = 2.0

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "nats"


@dataclass
class ShippedCluster:
    """The running cluster with the shipped node.conf and an auth.conf made by ``coldchain cluster-auth``."""

    cluster: NatsCluster
    creds: Path
    ca: Path

    def password(self, user: str) -> str:
        """The provisioned password of a crate, ``staff.NAME`` or ``coldchain-gateway``."""
        if user.startswith("staff."):
            return (self.creds / f"{user}.password").read_text().strip()
        if user == "coldchain-gateway":
            return (self.creds / "gateway-mqtt-password").read_text().strip()
        return (self.creds / user / "mqtt-password").read_text().strip()


def _shipped_render(etc: Path, root: Path) -> object:
    template = (SHIPPED / "node.conf").read_text()

    def render(node: NatsNode) -> str:
        routes = "\n".join(f'    "nats-route://127.0.0.1:{port}"' for port in node.routes)
        head, _, tail = template.partition("  routes: [\n")
        _, _, tail = tail.partition("  ]\n")
        return (
            (head + f"  routes: [\n{routes}\n  ]\n" + tail)
            .replace("server_name: n1", f"server_name: {node.server_name}")
            .replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{node.port}")
            .replace("http: 127.0.0.1:8222", f"http: 127.0.0.1:{node.http_port}")
            .replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{node.cluster_port}")
            .replace("listen: 0.0.0.0:8883", f"listen: 127.0.0.1:{node.mqtt_port}")
            .replace("/etc/coldchain/nats/", f"{etc}/")
            .replace("/var/lib/coldchain-nats", f"{node.dir}/jetstream")
            .replace("max_file_store: 50GB", "max_file_store: 1GB")
            # nats-server includes relative to the including file only
            .replace("include ./auth.conf", f"include {os.path.relpath(etc / 'auth.conf', node.dir)}")
        )

    return render


def partitioned_cluster(workdir: Path, partitions: int = TEST_PARTITIONS) -> NatsCluster:
    """Three nodes (no logins) whose account maps crates' messages into ``partitions`` partitions."""
    return NatsCluster(workdir, auth=mappings(partitions))


@contextlib.contextmanager
def streaming_cluster(workdir: Path) -> Iterator[NatsCluster]:
    """A started partitioned cluster with the telemetry stream, stopped on leaving."""
    cluster = partitioned_cluster(workdir).start()
    try:
        create_stream(cluster.urls)
        yield cluster
    finally:
        cluster.stop()


def cluster_gateway_config(
    directory: Path, cluster: NatsCluster, influx: InfluxDB, database: str, client_id: str,
    partitions: int = TEST_PARTITIONS, extra: str = "",
) -> Path:  # fmt: skip
    """A gateway TOML in ``directory`` with a ``[cluster]`` table for ``cluster`` (short leases)."""
    directory.mkdir(parents=True, exist_ok=True)
    stand_in = SimpleNamespace(host="127.0.0.1", port=cluster.nodes[0].mqtt_port)  # [mqtt] login only is used
    nats = ", ".join(f'"{url}"' for url in cluster.urls)
    brokers = ", ".join(f'"{broker}"' for broker in cluster.mqtt_brokers)
    table = f"""
[cluster]
nats = [{nats}]
brokers = [{brokers}]
partitions = {partitions}
lease_ttl = {TEST_LEASE_TTL_S}
ack_wait = {TEST_ACK_WAIT_S}
"""
    return gateway_config(directory, stand_in, influx, database, extra=table + extra, client_id=client_id)  # type: ignore[arg-type]


def start_shipped_cluster(root: Path, crates: tuple[str, ...], staff: tuple[str, ...]) -> ShippedCluster:
    """Provision the gateway, ``crates`` and ``staff``; run three nodes on the shipped config under ``root``
    (``TEST_PARTITIONS`` partitions)."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    ca = make_ca(etc)
    creds = root / "creds"
    common = ["--broker-dir", str(root / "mosquitto"), "--keys-dir", str(root / "keys"), "--out", str(creds)]
    (root / "mosquitto").mkdir()
    for crate in crates:
        assert provision(["crate", crate, "--broker-host", "127.0.0.1", *common]) == 0
    for name in staff:
        assert provision(["staff", name, *common]) == 0
    assert provision(["gateway", *common]) == 0
    auth = ["--creds", str(creds), "--out", str(etc / "auth.conf"), "--partitions", str(TEST_PARTITIONS)]
    assert cluster_auth(auth) == 0
    cluster = NatsCluster(root / "nodes", render=_shipped_render(etc, root))  # type: ignore[arg-type]
    return ShippedCluster(cluster.start(), creds, ca)


class Mqtt311:
    """A paho MQTT 3.1.1 client that records what it receives, its CONNACK and its disconnects."""

    def __init__(self, address: str, client_id: str, user: str | None = None, password: str | None = None,
                 ca: Path | None = None, clean_session: bool = True) -> None:  # fmt: skip
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[int] = queue.Queue()
        self.disconnects = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean_session
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc.value)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_disconnect = lambda c, u, f, rc, p: self._disconnected()
        host, port = address.rsplit(":", 1)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _disconnected(self) -> None:
        self.disconnects += 1

    def connected(self) -> int:
        """The CONNACK return code (0: accepted)."""
        return self.connack.get(timeout=10)

    def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe (QoS 1 unless told); the granted QoS, or 128 when refused."""
        done: queue.Queue[int] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: done.put(rcs[0].value)
        self.client.subscribe(topic, qos=qos)
        return done.get(timeout=10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 (waits up to 5 s for the PUBACK)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

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
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def stream_messages(urls: list[str], user: str | None = None, password: str | None = None, ca: Path | None = None,
                    until: Callable[[list[tuple[str, bytes]]], bool] = bool, wait: float = 10.0,
                    ) -> list[tuple[str, bytes]]:  # fmt: skip
    """Every (subject, payload) in the telemetry stream once ``until`` holds of them (or ``wait`` has passed).

    An MQTT PUBACK says the node took the message, not that the stream stored it yet: hence the wait.
    """

    async def read() -> list[tuple[str, bytes]]:
        nc = await connect(urls, user, password, ca)
        try:
            js = nc.jetstream(timeout=10)
            deadline = time.monotonic() + wait
            out: list[tuple[str, bytes]] = []
            while True:
                try:
                    info = await js.stream_info(STREAM)
                    for seq in range(max(info.state.first_seq, len(out) + 1), info.state.last_seq + 1):
                        msg = await js.get_msg(STREAM, seq)
                        out.append((msg.subject, msg.data or b""))
                except nats.errors.TimeoutError:
                    if time.monotonic() > deadline:
                        raise
                    continue  # the stream is electing a leader (after a node was killed): ask again
                if until(out) or time.monotonic() > deadline:
                    return out
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    return asyncio.run(read())


def create_stream(urls: list[str], user: str | None = None, password: str | None = None,
                  ca: Path | None = None) -> None:  # fmt: skip
    """Create the telemetry stream (replicas 3)."""

    async def create() -> None:
        nc = await connect(urls, user, password, ca)
        try:
            await ensure_stream(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(create())


def cluster_agent_config(directory: Path, crate: str, brokers: list[str], device: str) -> Path:
    """An agent config for ``crate`` on the cluster's MQTT listeners (3.1.1), reading the pty ``device``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "agent.toml"
    listed = ", ".join(f'"{broker}"' for broker in brokers)
    path.write_text(
        f"""[crate]
id = "{crate}"
profile = "cryo"

[mqtt]
brokers = [{listed}]
protocol = "3.1.1"
keepalive_s = 5
reconnect_min_s = 0.05
reconnect_max_s = 0.5

[spool]
path = "spool.sqlite"
ack_timeout_s = 2.0

[[probes]]
driver = "serial"
port = "{device}"
sensors = ["probe1"]
tick_timeout_s = 0.2
"""
    )
    return path


class ClusterGateway(GatewayProcess):
    """``python -m gateway.jetstream_main`` on the cluster as a child process; waits for its ``subscribed`` line."""

    def __init__(self, config: Path, log: Path, level: str = "DEBUG") -> None:
        self.log = log
        self._lines: queue.Queue[str | None] = queue.Queue()
        argv = [sys.executable, "-m", "gateway.jetstream_main", "--config", str(config), "--log-level", level]
        with log.open("ab") as err:
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, text=True)
        GatewayProcess.running.append(self)
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.wait_for("subscribed", timeout=30)
        except BaseException:
            self.stop(kill=True)
            raise


def consumer_pending(urls: list[str], partitions: int = TEST_PARTITIONS) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acknowledged) of every partition's consumer together."""

    async def read() -> tuple[int, int]:
        nc = await connect(urls)
        pending = unacked = 0
        try:
            js = nc.jetstream(timeout=10)
            for partition in range(partitions):
                try:
                    info = await js.consumer_info(STREAM, durable_of(partition))
                except nats.js.errors.NotFoundError:
                    continue  # no gateway has served it yet
                pending += int(info.num_pending or 0)
                unacked += int(info.num_ack_pending or 0)
            return pending, unacked
        finally:
            await nc.close()

    return asyncio.run(read())


def lease_holders(urls: list[str], partitions: int = TEST_PARTITIONS) -> dict[int, str]:
    """partition -> the gateway holding its lease now (partitions nobody holds are left out)."""

    async def read() -> dict[int, str]:
        nc = await connect(urls)
        try:
            kv = await nc.jetstream(timeout=5).key_value(LEASES)
            holders = {}
            for partition in range(partitions):
                try:
                    holders[partition] = (await kv.get(f"p{partition}")).value.decode()  # type: ignore[union-attr]
                except nats.js.errors.KeyNotFoundError:
                    continue
            return holders
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except (nats.errors.Error, TimeoutError):
        return {}  # the bucket is being made, or its leader elected: nobody is known to hold anything
