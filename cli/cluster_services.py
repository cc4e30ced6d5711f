"""A private three-node nats-server cluster (JetStream + MQTT listeners) on free loopback ports.

The fleet deployment's broker (docs/cluster.md), started by the tests the way
``cli.services`` starts mosquitto and influxd: each node in its own temp directory,
every port free on 127.0.0.1, never the NATS server that may run on 4222.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.services import ServiceError, _find, _port_open, _Process, free_port

__all__ = ["NatsCluster", "NatsNode"]

CLUSTER_NAME = "coldchain"


class NatsNode(_Process):
    """One nats-server of the cluster: client, route, MQTT and monitoring ports of its own."""

    name = "nats-server"

    def __init__(
        self,
        workdir: Path,
        server_name: str,
        auth: str = "",
        mqtt_extra: str = "",
        render: Callable[[NatsNode], str] | None = None,
    ) -> None:
        """``auth``: an authorization block shared by the nodes; ``mqtt_extra``: more mqtt settings;
        ``render``: makes the node's whole configuration instead (e.g. the shipped one, moved here)."""
        super().__init__(workdir)
        self.server_name = server_name
        self.host = "127.0.0.1"
        self.port = self.cluster_port = self.mqtt_port = self.http_port = 0
        self.pick_ports()
        self.auth = auth
        self.mqtt_extra = mqtt_extra
        self.routes: list[int] = []
        self.render = render
        self.conf = self.dir / "node.conf"

    def pick_ports(self) -> None:
        """Free loopback ports for the client, route, MQTT and monitoring listeners (before the node starts)."""
        self.port, self.cluster_port, self.mqtt_port, self.http_port = (free_port() for _ in range(4))

    @property
    def url(self) -> str:
        """The NATS client URL of this node."""
        return f"nats://{self.host}:{self.port}"

    def write_conf(self) -> None:
        """Write the node's configuration (routes to every other node of the cluster)."""
        if self.render is not None:
            self.conf.write_text(self.render(self))
            return
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.routes)
        self.conf.write_text(
            f"""server_name: {self.server_name}
listen: 127.0.0.1:{self.port}
http: 127.0.0.1:{self.http_port}
jetstream {{
  store_dir: "{self.dir}/jetstream"
  max_memory_store: 64MB
  max_file_store: 1GB
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: 127.0.0.1:{self.cluster_port}
  routes: [{routes}]
}}
mqtt {{
  listen: 127.0.0.1:{self.mqtt_port}
  # MQTT sessions, retained messages and QoS 1 messages survive the loss of one node
  stream_replicas: 3
  {self.mqtt_extra}
}}
{self.auth}
"""
        )

    def spawn(self) -> None:
        """Start the process without waiting for the cluster (its peers may not run yet)."""
        self.write_conf()
        self._spawn([_find("nats-server", "nats-server"), "-c", str(self.conf)], lambda: _port_open(self.port))

    def healthy(self) -> bool:
        """True when the node's /healthz says it (and its JetStream) is ready."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, ValueError):
            return False

    def client_names(self) -> list[str]:
        """The names of the NATS clients connected to this node (/connz)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/connz?limit=1024", timeout=2) as response:
            return [str(c.get("name", "")) for c in json.load(response).get("connections") or []]

    def meta_leader(self) -> str:
        """The JetStream meta leader this node knows of (/jsz), "" when none."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/jsz", timeout=2) as response:
            report: dict[str, Any] = json.load(response)
        return str((report.get("meta_cluster") or {}).get("leader") or "")


class NatsCluster:
    """Three (or ``size``) nats-server nodes routed to each other, with JetStream and MQTT."""

    def __init__(
        self,
        workdir: Path,
        size: int = 3,
        auth: str = "",
        mqtt_extra: str = "",
        render: Callable[[NatsNode], str] | None = None,
    ) -> None:
        self.nodes = [NatsNode(workdir / f"n{i + 1}", f"n{i + 1}", auth, mqtt_extra, render) for i in range(size)]
        self._route()

    def _route(self) -> None:
        for node in self.nodes:
            node.routes = [other.cluster_port for other in self.nodes if other is not node]

    @property
    def urls(self) -> list[str]:
        """NATS client URLs of every node."""
        return [node.url for node in self.nodes]

    @property
    def mqtt_brokers(self) -> list[str]:
        """``host:port`` of every node's MQTT listener (the agent's ``[mqtt] brokers``)."""
        return [f"{node.host}:{node.mqtt_port}" for node in self.nodes]

    def start(self, timeout: float = 30.0, attempts: int = 3) -> NatsCluster:
        """Start every node; returns once each is healthy and the cluster has a JetStream meta leader.

        A free port can be taken by another process between its pick and the node's bind (a busy
        machine): then every node starts again on ports picked afresh, ``attempts`` times at most.
        """
        for attempt in range(attempts):
            try:
                for node in self.nodes:
                    if not node.running:
                        node.spawn()
                self.wait_ready(timeout)
                return self
            except ServiceError as exc:
                self.stop()  # nodes run in sessions of their own: nobody else would ever stop them
                if "address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
                for node in self.nodes:
                    node.pick_ports()
                self._route()
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every running node is healthy and agrees on a meta leader."""
        running = [node for node in self.nodes if node.running]

        def ready() -> bool:
            if not all(node.healthy() for node in running):
                return False
            leaders = {node.meta_leader() for node in running}
            return len(leaders) == 1 and "" not in leaders

        _wait(ready, timeout, "the NATS cluster has no JetStream meta leader", running)

    def restart(self, node: NatsNode, timeout: float = 30.0) -> None:
        """Start a stopped node again (same ports, same store) and wait for the cluster."""
        node.spawn()
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Stop every node we started."""
        for node in self.nodes:
            node.stop()


def _wait(ready: Callable[[], bool], timeout: float, what: str, nodes: list[NatsNode]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            if not node.running:
                tail = node.log.read_text(errors="replace")[-2000:]
                raise ServiceError(f"nats-server {node.server_name} exited:\n{tail}")
        try:
            if ready():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise ServiceError(f"{what} after {timeout:.0f} s (logs under {nodes[0].dir.parent})")
