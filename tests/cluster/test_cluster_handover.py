"""Two gateways on the cluster share its partitions; a killed one's are taken over, losing and inventing nothing.

Real processes throughout: three nats-server nodes (one cluster for the module, four partitions, 3 s leases),
two ``python -m gateway.jetstream_main`` and the real influxd. A fleet of simulated crates publishes over
MQTT 3.1.1 through one connection (any login may publish any crate's topics on this cluster without logins).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import signal
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cluster_helpers import (
    TEST_PARTITIONS,
    ClusterGateway,
    Mqtt311,
    cluster_gateway_config,
    consumer_pending,
    lease_holders,
    streaming_cluster,
)
from gateway_helpers import PROFILES, gaps_stored, seqs_stored, telemetry
from wait_helpers import wait_until

from cli.cluster_services import NatsCluster
from cli.services import InfluxDB
from coldchain.topics import status_topic, telemetry_topic
from coldchain.wire import CrateStatus, encode
from gateway.crate_kv import CrateKv
from gateway.jetstream_stream import connect, partition_of

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.fault]

T = TypeVar("T")
HAND_OVER_BOUND_S = 10.0  # the issue's goal at the default lease settings; the tests' leases are shorter


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One cluster for the module: each test uses crates of its own and stops its gateways (their leases free)."""
    with streaming_cluster(tmp_path_factory.mktemp("nats-handover")) as cluster:
        yield cluster


def _crates(prefix: str, per_partition: int) -> list[str]:
    """Crate ids, ``per_partition`` in each partition."""
    chosen: dict[int, list[str]] = {p: [] for p in range(TEST_PARTITIONS)}
    n = 0
    while any(len(c) < per_partition for c in chosen.values()):
        crate = f"{prefix}{n:03d}"
        n += 1
        if len(chosen[partition_of(crate, TEST_PARTITIONS)]) < per_partition:
            chosen[partition_of(crate, TEST_PARTITIONS)].append(crate)
    return sorted(c for crates in chosen.values() for c in crates)


def _two_gateways(
    tmp_path: Path, cluster: NatsCluster, influx: InfluxDB, database: str, profiles: Path | None = None
) -> dict[str, ClusterGateway]:
    """Gateways ``a`` and ``b`` (``profiles``: another profiles file, its ``quick`` profile the default), once they
    hold two partitions each."""
    gateways = {}
    for name in ("a", "b"):
        config = cluster_gateway_config(tmp_path / name, cluster, influx, database, f"gw-{name}-{database}")
        if profiles is not None:
            text = config.read_text().replace(json.dumps(str(PROFILES)), json.dumps(str(profiles)))
            config.write_text(text.replace('default = "cryo"', 'default = "quick"'))
        gateways[f"gw-{name}-{database}"] = ClusterGateway(config, tmp_path / f"{name}.log", level="DEBUG")

    def shared() -> bool:
        holders = lease_holders(cluster.urls)
        return len(holders) == TEST_PARTITIONS and sorted(holders.values()).count(sorted(gateways)[0]) == 2

    wait_until(shared, 20, "two partitions each")
    return gateways


class _Acks:
    """Every storage ack the crates receive, with when it was seen (drained by the test's loop)."""

    def __init__(self, broker: str) -> None:
        self.client = Mqtt311(broker, f"acks-{time.monotonic_ns()}")
        assert self.client.connected() == 0
        self.client.subscribe("coldchain/v1/crates/+/ack", qos=0)
        self.last: dict[str, int] = {}
        self.seen: list[tuple[float, str, int]] = []

    def drain(self, wait: float = 0.0) -> None:
        for topic, payload in self.client.received(wait):
            if not payload:
                continue
            crate, through = topic.split("/")[3], int(json.loads(payload)["stored_through"])
            self.last[crate] = through
            self.seen.append((time.monotonic(), crate, through))


def _all_held_by(cluster: NatsCluster, gateway: str) -> float:
    """Now (monotonic) if ``gateway`` holds every partition's lease, else 0."""
    return time.monotonic() if lease_holders(cluster.urls) == dict.fromkeys(range(TEST_PARTITIONS), gateway) else 0.0


def _alarm_changes(influx: InfluxDB, database: str, crate: str, rule: str) -> list[str]:
    rows = influx.rows(f"SELECT change FROM alarm WHERE crate = '{crate}' AND rule = '{rule}'", database)
    return [str(r["change"]) for r in rows]  # type: ignore[call-overload]


def test_killed_gateways_partitions_are_taken_over_and_nothing_is_lost(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """Partitions spread over both gateways; SIGKILL one mid-stream: the other serves its partitions within the
    bound, and every crate's readings are stored exactly once (count == distinct seqs == highest seq + 1), with
    no gap point, and each crate's storage ack reaches its last seq."""
    crates = _crates("C-HO", 2)
    gateways = _two_gateways(tmp_path, cluster, influxdb, database)
    holders = lease_holders(cluster.urls)
    victim, survivor = sorted(gateways)
    orphans = {c for c in crates if holders[partition_of(c, TEST_PARTITIONS)] == victim}
    assert 0 < len(orphans) < len(crates), "the fleet's crates are spread over both gateways"
    acks = _Acks(cluster.mqtt_brokers[2])
    fleet = Mqtt311(cluster.mqtt_brokers[0], f"fleet-{database}")
    assert fleet.connected() == 0
    rounds, kill_at = 50, 15
    killed = served = taken = 0.0
    try:
        for seq in range(rounds):
            for crate in crates:
                fleet.publish(telemetry_topic(crate), telemetry(crate, seq))
            if seq == kill_at:
                gateways[victim].stop(kill=True)
                killed, first_after = time.monotonic(), seq + 1
            acks.drain(0.05)
            if killed and not taken:
                taken = _all_held_by(cluster, survivor)
            if killed and not served:
                served = next((t for t, c, s in acks.seen if c in orphans and s >= first_after), 0.0)
        taken = taken or wait_until(lambda: _all_held_by(cluster, survivor), 20, "the survivor holding every partition")
        deadline = time.monotonic() + 30
        while any(acks.last.get(c) != rounds - 1 for c in crates):
            assert time.monotonic() < deadline, f"storage acks stopped short: {acks.last}"
            acks.drain(0.5)
        served = served or next(t for t, c, s in acks.seen if c in orphans and s >= first_after)
        print(f"\nhand-over: leases taken {taken - killed:.2f} s, first reading stored {served - killed:.2f} s "
              "after the SIGKILL")  # fmt: skip
        assert served - killed < HAND_OVER_BOUND_S
        for crate in crates:
            stored = seqs_stored(influxdb, database, crate)
            assert sorted(stored) == list(range(rounds)), f"{crate}: {stored}"
            assert gaps_stored(influxdb, database, crate) == [], crate
        wait_until(lambda: consumer_pending(cluster.urls) == (0, 0), 15, "everything acknowledged to JetStream")
        assert gateways[survivor].stop() == 0
    finally:
        fleet.close()
        acks.client.close()
        for gateway in gateways.values():
            gateway.stop()


def test_gateway_killed_during_an_excursion(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """A crate's gateway raises an excursion and is SIGKILLed while it is active: the alarm is raised once (in
    InfluxDB and on the alarm topic), the gateway taking the partition over neither raises it again nor forgets
    it, and its clear comes from the new owner; the clear's latency across the hand-over is measured."""
    gateways = _two_gateways(tmp_path, cluster, influxdb, database)
    victim = sorted(gateways)[0]
    holders = lease_holders(cluster.urls)
    crate = next(c for c in _crates("C-EX", 1) if holders[partition_of(c, TEST_PARTITIONS)] == victim)
    alarms = Mqtt311(cluster.mqtt_brokers[1], f"alarms-{database}")
    assert alarms.connected() == 0
    alarms.subscribe(f"coldchain/v1/alarms/{crate}/warning_high/probe1", qos=0)
    fleet = Mqtt311(cluster.mqtt_brokers[0], f"fleet-ex-{database}")
    assert fleet.connected() == 0
    now_ms = int(time.time() * 1000) - 60_000
    seen: list[tuple[float, str]] = []

    def send(seq: int, value: float) -> None:
        fleet.publish(telemetry_topic(crate), telemetry(crate, seq, value, ts=now_ms + seq * 1000))

    def states(wait: float) -> list[str]:
        seen.extend((time.monotonic(), json.loads(p)["state"]) for _, p in alarms.received(wait) if p)
        return [state for _, state in seen]

    try:
        for seq in range(5):
            send(seq, -170.0)
        for seq in range(5, 10):
            send(seq, -155.0)  # above warning_high's -160
        wait_until(lambda: "active" in states(0.2), 15, "the excursion's alarm from the first owner")
        gateways[victim].stop(kill=True)
        killed = time.monotonic()
        for seq in range(10, 15):
            send(seq, -155.0)  # still in excursion: nothing new to say
        for seq in range(15, 20):
            send(seq, -170.0)  # back below -162: the new owner clears it
        wait_until(lambda: "cleared" in states(0.2), 30, "the clear from the new owner")
        cleared = next(t for t, state in seen if state == "cleared")
        print(f"\nalarm across the hand-over: cleared {cleared - killed:.2f} s after the SIGKILL of its raiser")
        assert cleared - killed < HAND_OVER_BOUND_S
        states(1.0)
        assert [state for _, state in seen] == ["active", "cleared"]
        wait_until(lambda: len(_alarm_changes(influxdb, database, crate, "warning_high")) >= 2, 10, "alarm points")
        assert sorted(_alarm_changes(influxdb, database, crate, "warning_high")) == ["active", "cleared"]
        assert sorted(seqs_stored(influxdb, database, crate)) == list(range(20))
        assert lease_holders(cluster.urls)[partition_of(crate, TEST_PARTITIONS)] == sorted(gateways)[1]
        assert gateways[sorted(gateways)[1]].stop() == 0
    finally:
        fleet.close()
        alarms.close()
        for gateway in gateways.values():
            gateway.stop()


def test_paused_owner_cannot_overwrite_its_successor(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """SIGSTOP a gateway past its leases' TTL: the other takes its partitions and goes on; resumed, the stale owner
    finds its leases lost and drops them without acknowledging or saving, so the successor's state stands:
    every reading is stored once, no gap point, the storage ack reaches the last seq."""
    crates = _crates("C-FE", 1)
    gateways = _two_gateways(tmp_path, cluster, influxdb, database)
    stale, successor = sorted(gateways)
    holders = lease_holders(cluster.urls)
    acks = _Acks(cluster.mqtt_brokers[2])
    fleet = Mqtt311(cluster.mqtt_brokers[0], f"fleet-fe-{database}")
    assert fleet.connected() == 0
    process = gateways[stale].process
    try:
        for seq in range(10):
            for crate in crates:
                fleet.publish(telemetry_topic(crate), telemetry(crate, seq))
            if seq == 3:
                os.kill(process.pid, signal.SIGSTOP)
        every = dict.fromkeys(range(TEST_PARTITIONS), successor)
        wait_until(lambda: lease_holders(cluster.urls) == every, 20, "the successor holding every partition")
        for seq in range(10, 20):
            for crate in crates:
                fleet.publish(telemetry_topic(crate), telemetry(crate, seq))
        wait_until(lambda: (acks.drain(0.2), all(acks.last.get(c) == 19 for c in crates))[1], 20, "acks at 19")
        os.kill(process.pid, signal.SIGCONT)
        wait_until(lambda: "lost the lease" in gateways[stale].stderr(), 10, "the stale owner noticing")
        for seq in range(20, 25):
            for crate in crates:
                fleet.publish(telemetry_topic(crate), telemetry(crate, seq))
        wait_until(lambda: (acks.drain(0.2), all(acks.last.get(c) == 24 for c in crates))[1], 20, "acks at 24")
        for crate in crates:
            assert sorted(seqs_stored(influxdb, database, crate)) == list(range(25)), crate
            assert gaps_stored(influxdb, database, crate) == [], crate
        assert {p for p, g in holders.items() if g == stale}, "the stale owner held partitions before its pause"
        # it serves on: it takes its share again, and stops cleanly
        wait_until(lambda: list(lease_holders(cluster.urls).values()).count(stale) == 2, 20, "its share again")
        assert [gateway.stop() for gateway in gateways.values()] == [0, 0]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
        fleet.close()
        acks.client.close()
        for gateway in gateways.values():
            gateway.stop()


def test_stale_owners_state_write_is_refused(cluster: NatsCluster) -> None:
    """The fence itself: gateway A saves a crate, B takes the partition over (loads it) and saves; A's next save,
    made on the revision it knew, is refused, A is told to drop the partition, and B's state stands."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)  # the link's loop, as in the gateway
    thread.start()

    def run(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=15)

    nc = run(connect(cluster.urls))
    try:
        js = nc.jetstream(timeout=5)
        fenced: dict[str, list[int]] = {"a": [], "b": []}
        a = CrateKv(TEST_PARTITIONS, 3, fenced["a"].append)
        b = CrateKv(TEST_PARTITIONS, 3, fenced["b"].append)
        run(a.open(js))
        run(b.open(js))
        crate = "C-FX"
        partition = partition_of(crate, TEST_PARTITIONS)
        assert crate not in run(a.load(partition))  # the module's other crates of the partition may be there
        a.adopt(crate)
        a.save([(crate, {"by": "a", "seq": 1})])
        assert run(b.load(partition))[crate] == {"by": "a", "seq": 1}
        b.save([(crate, {"by": "b", "seq": 2})])
        a.save([(crate, {"by": "a", "seq": 3})])  # the stale owner, on the revision it wrote last
        assert fenced == {"a": [partition], "b": []}
        third = CrateKv(TEST_PARTITIONS, 3, fenced["b"].append)
        run(third.open(js))
        assert run(third.load(partition))[crate] == {"by": "b", "seq": 2}
    finally:
        run(nc.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


QUICK_PROFILE = """
[quick]
description = "test: offline for a second is an alarm"
[[quick.rules]]
name = "offline"
kind = "offline"
severity = "warning"
after_s = 1
"""


def test_a_crate_status_is_judged_by_its_partitions_owner_alone(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """Statuses are not partitioned (each gateway reads them all): a crate going offline is alarmed once, by the
    gateway holding its partition, and cleared once when it is back online."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES.read_text() + QUICK_PROFILE)
    gateways = _two_gateways(tmp_path, cluster, influxdb, database, profiles)
    crate = _crates("C-ST", 1)[0]
    alarms = Mqtt311(cluster.mqtt_brokers[1], f"offline-{database}")
    assert alarms.connected() == 0
    alarms.subscribe(f"coldchain/v1/alarms/{crate}/offline/crate", qos=0)  # a whole-crate rule's sensor level
    fleet = Mqtt311(cluster.mqtt_brokers[0], f"fleet-st-{database}")
    assert fleet.connected() == 0
    seen: list[str] = []

    def states(wait: float) -> list[str]:
        seen.extend(json.loads(p)["state"] for _, p in alarms.received(wait) if p)
        return seen

    try:
        fleet.publish(telemetry_topic(crate), telemetry(crate, 0, ts=int(time.time() * 1000)))
        time.sleep(1.0)  # the reading is judged first: the crate is known and online
        status = encode(CrateStatus(crate, "offline", int(time.time() * 1000)))
        fleet.publish(status_topic(crate), status, retain=True)
        wait_until(lambda: "active" in states(0.2), 15, "the offline alarm")
        fleet.publish(status_topic(crate), encode(CrateStatus(crate, "online", int(time.time() * 1000))), retain=True)
        wait_until(lambda: "cleared" in states(0.2), 15, "the offline alarm cleared")
        assert states(1.5) == ["active", "cleared"]
    finally:
        fleet.close()
        alarms.close()
        for gateway in gateways.values():
            gateway.stop()


def _send(fleet: Mqtt311, crate: str, seq: int) -> None:
    """Publish a reading; a node dropping the connection meanwhile is fine: what no storage ack confirmed is sent
    again, as the agent does."""
    try:
        fleet.publish(telemetry_topic(crate), telemetry(crate, seq))
    except RuntimeError:
        time.sleep(0.2)  # paho reconnects on its own


def _connect_to_one_of(brokers: list[str], client_id: str, bound: float = 40.0) -> Mqtt311:
    """A connection to the first of ``brokers``, taken in turn, that accepts one, as the agent moves on through its
    list: while the cluster elects a JetStream meta leader a node may answer no CONNACK for seconds."""
    deadline, turn = time.monotonic() + bound, itertools.cycle(brokers)
    while True:
        client = Mqtt311(next(turn), client_id)
        try:
            if client.connected() == 0:
                return client
        except queue.Empty:
            pass
        client.close()
        assert time.monotonic() < deadline, f"no node of {brokers} accepted a connection within {bound:.0f} s"


def test_node_killed_under_two_gateways_then_it_and_a_gateway_restart(
    cluster: NatsCluster, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """The node the fleet publishes through and a gateway consumes through is SIGKILLed mid-stream: the fleet
    moves to another node, both gateways consume on through the others; the node restarts; then a gateway is
    SIGKILLed and restarted. Every crate's readings are stored exactly once (count == distinct seqs == highest
    seq + 1), no gap point but a filled one of readings the stream lost in the node's outage (sent again), each
    storage ack at the crate's last seq, nothing pending, every partition owned.
    Last in the module: it kills (and restarts) a node of the module's cluster."""
    crates = _crates("C-NK", 1)
    gateways = _two_gateways(tmp_path, cluster, influxdb, database)
    node = next(n for n in cluster.nodes if set(gateways) & set(n.client_names()))
    elsewhere = [f"127.0.0.1:{n.mqtt_port}" for n in cluster.nodes if n is not node]
    acks = _Acks(elsewhere[1])
    fleet = Mqtt311(f"127.0.0.1:{node.mqtt_port}", f"fleet-nk-{database}")
    assert fleet.connected() == 0
    rounds, node_kill_at, node_restart_at, gateway_kill_at = 40, 10, 20, 30
    killed = moved = stored_again = 0.0
    was_leader = False
    try:
        for seq in range(rounds):
            if seq == node_kill_at:
                was_leader = node.meta_leader() == node.server_name
                node.stop(kill=True)
                killed = time.monotonic()
                fleet.close()
                fleet = _connect_to_one_of(elsewhere, f"fleet-nk-{database}")
                moved = time.monotonic()
            if seq == node_restart_at:
                cluster.restart(node)
            if seq == gateway_kill_at:
                victim = sorted(gateways)[0]
                gateways[victim].stop(kill=True)
                config = cluster_gateway_config(tmp_path / "a", cluster, influxdb, database, victim)
                gateways[victim] = ClusterGateway(config, tmp_path / "a-again.log", level="DEBUG")
            for crate in crates:
                _send(fleet, crate, seq)
            acks.drain(0.05)
            if killed and not stored_again:
                stored_again = next((t for t, _, s in acks.seen if t > killed and s >= node_kill_at), 0.0)
        deadline = time.monotonic() + 40
        while any(acks.last.get(c) != rounds - 1 for c in crates):
            assert time.monotonic() < deadline, f"storage acks stopped short: {acks.last}"
            acks.drain(1.0)
            for crate in crates:  # what the dying node PUBACKed may never have entered the stream
                for seq in range(acks.last.get(crate, -1) + 1, rounds):
                    _send(fleet, crate, seq)
        stored_again = stored_again or next(t for t, _, s in acks.seen if t > killed and s >= node_kill_at)
        print(f"\nnode SIGKILL under two gateways (meta leader: {was_leader}): the fleet connected to another node "
              f"{moved - killed:.2f} s, readings stored again {stored_again - killed:.2f} s after it")  # fmt: skip
        for crate in crates:
            stored = seqs_stored(influxdb, database, crate)
            assert sorted(stored) == list(range(rounds)), f"{crate}: {stored}"
            # What a node PUBACKs while the stream elects a leader may never enter it (docs/cluster.md): the crate
            # sends it again, so such a gap is filled, nothing missing, and lies within the node's outage.
            gaps = gaps_stored(influxdb, database, crate)
            lost_at_election = [(first, last) for first, last, missing, state in gaps if state == "closed" and
                                missing == 0 and node_kill_at <= first <= last < gateway_kill_at]  # fmt: skip
            assert len(lost_at_election) == len(gaps), f"{crate}: {gaps}"
            if gaps:
                print(f"{crate}: seqs {lost_at_election} PUBACKed in the node's outage, sent again, stored once")
        wait_until(lambda: consumer_pending(cluster.urls) == (0, 0), 15, "everything acknowledged to JetStream")
        wait_until(lambda: sorted(lease_holders(cluster.urls)) == list(range(TEST_PARTITIONS)), 15, "all owned")
        assert set(lease_holders(cluster.urls).values()) <= set(gateways)
        assert [gateway.stop() for gateway in gateways.values()] == [0, 0]
    finally:
        fleet.close()
        acks.client.close()
        for gateway in gateways.values():
            gateway.stop()
        if not node.running:
            cluster.restart(node)
