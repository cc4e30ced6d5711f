"""``coldchain demo --cluster``: the fleet deployment (docs/cluster.md) on this machine, and a gateway's death.

Starts three private nats-server nodes (JetStream, MQTT 3.1.1 listeners; free loopback ports, a temp
directory; the crate space mapped into 8 partitions), influxd (its data kept, as the single-host
demo's), two gateways sharing the partitions by leases, the staff board and the three simulated
crates, whose agents know all three nodes. As C-0003 warms towards its excursion, the gateway holding
its partition is SIGKILLed; the view says which partitions moved to the other gateway, when readings are
stored again and, once every crate's storage ack has caught up, whether InfluxDB holds each reading
exactly once. Alarms are raised once: the new owner resumes each crate's state from the cluster.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from nats.errors import Error as NatsError

from board.auth import hash_password
from cli.cluster_services import NatsCluster
from cli.demo_handover import ACKS, Handover
from cli.demo_process import child, demo_run, tell, watch
from cli.demo_setup import (
    CRATES,
    STORY_CRATE,
    DataDir,
    sim_argv,
    write_agent_config,
    write_board_config,
    write_gateway_config,
)
from cli.demo_story import LATE_AFTER_S
from cli.demo_view import SUBSCRIPTIONS, DemoView
from cli.mqtt_read import BrokerSettings
from cli.services import InfluxDB, free_port
from coldchain.topics import PARTITIONED_TELEMETRY_FILTER, unpartitioned
from gateway.cluster_config import ClusterConfig
from gateway.jetstream_stream import connect, mappings, partition_of
from gateway.leases import LEASES

__all__ = ["run_cluster"]

DEMO_USER = "demo"
PARTITIONS = 8  # as rendered into the nodes' mappings; production: 32-64 (docs/cluster.md)
LEASE_TTL_S = ClusterConfig((), ()).lease_ttl_s  # the default: the demo shows the hand-over as deployed
GATEWAYS = ("gateway-a", "gateway-b")
_GATEWAY = [sys.executable, "-m", "gateway.jetstream_main"]


class _Fleet:
    """The gateways on the cluster, started in the demo's ExitStack; one of them SIGKILLed part-way."""

    def __init__(self, stack: ExitStack, cluster: NatsCluster, data: DataDir, configs: dict[str, Path]) -> None:
        self._urls = cluster.urls
        self.gateways = {
            name: stack.enter_context(
                child(name, [*_GATEWAY, "--config", str(config)], data.logs / f"{name}.log", None)
            )
            for name, config in configs.items()
        }

    def wait_ready(self) -> None:
        """Return once every gateway has subscribed (they start side by side: the demo comes up sooner)."""
        for gateway in self.gateways.values():
            gateway.wait_for("subscribed")
        self._killed = ""
        self._held: list[int] = []

    def kill(self) -> tuple[str, set[str]]:
        """SIGKILL the gateway holding the story crate's partition; what to tell, and the crates it served."""
        holders = _lease_holders(self._urls)
        victim = holders.get(partition_of(STORY_CRATE, PARTITIONS), "")
        name = next((n for n in self.gateways if _gateway_id(n) == victim), next(iter(self.gateways)))
        process = self.gateways[name].process
        process.send_signal(signal.SIGKILL)
        process.wait()
        self._killed = _gateway_id(name)
        self._held = sorted(k for k, holder in holders.items() if holder == self._killed)
        crates = {c.crate for c in CRATES if partition_of(c.crate, PARTITIONS) in self._held}
        told = (
            f"SIGKILLed {name} (pid {process.pid}) as {STORY_CRATE} warms towards its excursion: it held partitions"
            f" {_listed(self._held)} of {PARTITIONS} (crates {', '.join(sorted(crates)) or 'none'}); their leases"
            f" expire within {LEASE_TTL_S:g} s"
        )
        return told, crates

    def moves(self) -> str:
        """Which partitions the killed gateway held and who holds them now."""
        holders = _lease_holders(self._urls)
        now = sorted({holders.get(k, "nobody") for k in self._held})
        return f"partitions {_listed(self._held)} moved from {self._killed} to {', '.join(now)}"


def _gateway_id(name: str) -> str:
    """The gateway's id in the fleet: its [mqtt] client_id (cli.demo_setup.write_gateway_config)."""
    return f"coldchain-{name}"


def _listed(partitions: list[int]) -> str:
    return ", ".join(str(k) for k in partitions) or "none"


def _lease_holders(urls: list[str]) -> dict[int, str]:
    """Partition -> the gateway holding its lease ({} when the bucket cannot be read now)."""

    async def read() -> dict[int, str]:
        nc = await connect(urls)
        try:
            leases = await nc.jetstream(timeout=5).key_value(LEASES)
            holders = {}
            for key in await leases.keys():
                entry = await leases.get(key)
                holders[int(key.removeprefix("p"))] = (entry.value or b"").decode()
            return holders
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except (NatsError, TimeoutError, OSError, ValueError):
        return {}


def _cluster_table(cluster: NatsCluster) -> str:
    """The gateways' [cluster] table: the nodes, the partitions, the default lease settings."""
    nats = ", ".join(f'"{url}"' for url in cluster.urls)
    brokers = ", ".join(f'"{broker}"' for broker in cluster.mqtt_brokers)
    return f"[cluster]\nnats = [{nats}]\nbrokers = [{brokers}]\npartitions = {PARTITIONS}\n"


def _nodes(cluster: NatsCluster, out: TextIO) -> None:
    for node in cluster.nodes:
        pid = node.process.pid if node.process else "?"
        print(f"started nats-server {node.server_name} pid {pid}: NATS {node.port}, MQTT {node.mqtt_port}", file=out)


def run_cluster(duration: float, speed: float, data: DataDir, keep: bool, out: TextIO = sys.stdout) -> int:
    """Start the cluster deployment, kill its gateway part-way, until ``duration`` seconds pass (0: Ctrl-C)."""
    if data.fresh():
        print(f"replaced the previous demo's data in {data.path}", file=out)
    record: dict[str, object] = {"version": 1, "started_ms": int(time.time() * 1000), "complete": False}
    handover: Handover | None = None
    with demo_run("coldchain-demo-cluster-", keep, out) as session, ExitStack() as stack:
        runtime = session.runtime
        cluster = NatsCluster(runtime / "nats", auth=mappings(PARTITIONS)).start()
        stack.callback(cluster.stop)
        _nodes(cluster, out)
        influx = InfluxDB(data.influxd).start()
        stack.callback(influx.stop)
        print(f"started influxd pid {influx.process.pid if influx.process else '?'} at {influx.url}", file=out)
        record["influx_port"] = influx.port
        data.write(record)
        data.write_influx_toml(influx.url)
        node = cluster.nodes[0]
        configs = {
            name: write_gateway_config(
                runtime, node.host, node.mqtt_port, influx.url, LATE_AFTER_S / speed,
                name=name, cluster=_cluster_table(cluster),
            )
            for name in GATEWAYS
        }  # fmt: skip
        fleet = _Fleet(stack, cluster, data, configs)
        password = secrets.token_urlsafe(9)
        board_port = free_port()
        board = write_board_config(
            runtime, board_port, (node.host, node.mqtt_port), influx.url,
            user=DEMO_USER, password_hash=hash_password(password),
        )  # fmt: skip
        argv = [sys.executable, "-m", "board", "--config", str(board)]
        board_process = stack.enter_context(child("board", argv, data.logs / "board.log", None))
        _start_crates(stack, runtime, data, cluster, speed)
        fleet.wait_ready()
        board_process.wait_for("board listening")
        header = [
            f"coldchain demo --cluster: board http://127.0.0.1:{board_port}/ (sign in as {DEMO_USER!r},"
            f" password {password!r})",
            "Ctrl-C stops everything",
        ]
        view = DemoView(tuple(c.crate for c in CRATES), out, out.isatty(), header)
        staff = BrokerSettings(node.host, cluster.nodes[1].mqtt_port, protocol="3.1.1")
        handover = Handover(view, influx, fleet, staff, speed=speed)
        topics = (*SUBSCRIPTIONS, ACKS, PARTITIONED_TELEMETRY_FILTER)
        watcher = watch(node.host, cluster.nodes[2].mqtt_port, view, topics, also=handover.handle, unmap=unpartitioned)
        stack.callback(watcher.loop_stop)
        stack.callback(watcher.disconnect)
        if not out.isatty():
            for line in header:
                print(line, file=out, flush=True)
        tell(handover.step, view, duration, out)
        record.update(ended_ms=int(time.time() * 1000), complete=True)
        data.write(record)
    if session.failed:
        return 1
    verdict = handover.verdict if handover is not None else None
    said = {True: "lost nothing", False: "LOST OR DOUBLED READINGS", None: "was not seen to the end"}[verdict]
    print(f"hand-over {said}", file=out)
    print("demo stopped", file=out, flush=True)
    return 0 if verdict is not False else 1


def _start_crates(stack: ExitStack, runtime: Path, data: DataDir, cluster: NatsCluster, speed: float) -> None:
    """The simulators side by side, then each crate's agent once its simulator's pty is there."""
    links = {crate.crate: runtime / f"tty-{crate.crate}" for crate in CRATES}
    sims = [
        stack.enter_context(
            child(f"sim {c.crate}", sim_argv(c, links[c.crate], speed), data.logs / f"sim-{c.crate}.log", None)
        )
        for c in CRATES
    ]
    for crate, sim in zip(CRATES, sims, strict=True):
        sim.wait_for("device")
        link = links[crate.crate]
        agent = write_agent_config(runtime, crate.crate, link, "", 0, brokers=cluster.mqtt_brokers)
        argv = [sys.executable, "-m", "edge", "--config", str(agent)]
        stack.enter_context(child(f"agent {crate.crate}", argv, data.logs / f"agent-{crate.crate}.log", None))
