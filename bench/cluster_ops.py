"""Bench helper: the nodes' CPU for one replicated JetStream operation of each kind a reading costs.

A private three-node cluster (cli.cluster_services, temp dir, free ports), one NATS connection, and for
each kind ``--count`` operations, awaited ``--window`` at a time as the gateway does with a batch:
a stream publish (R3, as the crate's reading enters COLDCHAIN), a KV update fenced by revision (R3, a
crate's state), an explicit ack of each message of an R3 pull consumer, the same messages acknowledged
by one ack of the last with AckPolicy.ALL, and a fetch; and over MQTT 3.1.1 at QoS 1 (paho, to one node): a
publish captured by the R3 stream (a crate's reading) and a retained publish over 100 topics (the
gateway's storage acks, kept by nats-server in its R3 retained-message stream). Prints one JSON line per kind: the three
nodes' CPU milliseconds per operation (all replicas together) and their messages in per operation.

    .venv/bin/python bench/cluster_ops.py --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig  # noqa: E402

from bench.cluster_rig import cpu_s, nats_counters  # noqa: E402
from cli.cluster_services import NatsCluster  # noqa: E402
from gateway.jetstream_stream import connect  # noqa: E402


async def cost(
    name: str, cluster: NatsCluster, count: int, operation: Callable[[], Awaitable[object]], per: int = 1
) -> None:
    """Run ``operation`` (it does ``per`` operations) until ``count`` are done; print the nodes' cost per one."""
    pids = [n.process.pid for n in cluster.nodes if n.process is not None]
    ports = [n.http_port for n in cluster.nodes]
    await asyncio.sleep(1)  # what came before settles
    before, counted, started = sum(cpu_s(p) for p in pids), nats_counters(ports), time.monotonic()
    for _ in range(count // per):
        await operation()
    await asyncio.sleep(1)  # replication of the last operations
    spent = sum(cpu_s(p) for p in pids) - before
    after = nats_counters(ports)
    line = {"op": name, "count": count, "seconds": round(time.monotonic() - started, 1),
            "nodes_cpu_ms_per_op": round(1000 * spent / count, 3),
            "nodes_in_msgs_per_op": round((after["in_msgs"] - counted["in_msgs"]) / count, 1)}  # fmt: skip
    print(json.dumps(line), flush=True)


async def run(cluster: NatsCluster, count: int, window: int) -> None:
    nc = await connect(cluster.urls)
    js: JetStreamContext = nc.jetstream(timeout=10)
    await js.add_stream(StreamConfig(name="OPS", subjects=["ops.>"], num_replicas=3))
    kv = await js.create_key_value(bucket="ops", history=1, replicas=3)
    revisions = {f"k{i}": await kv.put(f"k{i}", b"{}") for i in range(window)}

    async def publish() -> None:
        await asyncio.gather(*(js.publish(f"ops.{i}", b"x" * 150) for i in range(window)))

    async def update() -> None:
        async def one(key: str) -> None:
            revisions[key] = await kv.update(key, b"x" * 300, last=revisions[key])

        await asyncio.gather(*(one(key) for key in revisions))

    for policy, name in ((AckPolicy.EXPLICIT, "explicit"), (AckPolicy.ALL, "all")):
        config = ConsumerConfig(durable_name=name, ack_policy=policy, num_replicas=3, max_ack_pending=-1)
        await js.add_consumer("OPS", config)
    await cost("stream publish R3", cluster, count, publish, window)
    await cost("KV update R3 (fenced)", cluster, count, update, window)
    explicit = await js.pull_subscribe_bind(durable="explicit", stream="OPS")
    everything = await js.pull_subscribe_bind(durable="all", stream="OPS")

    async def ack_each() -> None:
        messages = await explicit.fetch(window, timeout=5)
        for message in messages:
            await message.ack()
        await nc.flush()

    async def ack_last() -> None:
        messages = await everything.fetch(window, timeout=5)
        await messages[-1].ack()
        await nc.flush()

    await cost("fetch + explicit ack of each (R3 consumer)", cluster, count, ack_each, window)
    await cost("fetch + one ack of the last (AckPolicy.ALL, R3 consumer)", cluster, count, ack_last, window)
    await nc.close()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ops", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", cluster.nodes[0].mqtt_port)
    client.loop_start()
    sent = iter(range(count))

    def mqtt_publish(retain: bool) -> Callable[[], Awaitable[None]]:
        async def publish() -> None:
            infos = [client.publish(f"ops/{next(sent) % 100}", b"x" * 150, qos=1, retain=retain) for _ in range(window)]
            for info in infos:
                await asyncio.to_thread(info.wait_for_publish, 10)

        return publish

    try:
        await cost("MQTT QoS 1 publish into the R3 stream", cluster, count, mqtt_publish(False), window)
        sent = iter(range(count))
        await cost("MQTT QoS 1 retained publish (100 topics)", cluster, count, mqtt_publish(True), window)
    finally:
        client.loop_stop()
        client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="operations of each kind")
    parser.add_argument("--window", type=int, default=20, help="operations awaited together (a batch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldchain-cluster-ops-") as tmp:
        cluster = NatsCluster(Path(tmp) / "nats").start()
        try:
            asyncio.run(asyncio.wait_for(run(cluster, args.count, args.window), timeout=600))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
