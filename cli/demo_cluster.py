"""``coldchain demo --cluster``: the fleet deployment (docs/cluster.md) on this machine, and a gateway's death.

Starts three private nats-server nodes (JetStream, MQTT 3.1.1 listeners; free loopback ports, a temp
directory), influxd (its data kept, as the single-host demo's), the gateway on the cluster, the staff
board and the three simulated crates, whose agents know all three nodes. Part-way the gateway is
SIGKILLed while C-0003 is in an excursion; the view says when readings are stored again and, once
every crate's storage ack has caught up, whether InfluxDB holds each reading exactly once.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from board.auth import hash_password
from cli.cluster_services import NatsCluster
from cli.demo_handover import ACKS, Handover
from cli.demo_process import Child, StopRequestedError, child, on_sigterm, watch
from cli.demo_setup import CRATES, DataDir, sim_argv, write_agent_config, write_board_config, write_gateway_config
from cli.demo_story import LATE_AFTER_S
from cli.demo_view import SUBSCRIPTIONS, DemoView
from cli.mqtt_read import BrokerSettings
from cli.services import InfluxDB, ServiceError, free_port

__all__ = ["run_cluster"]

DEMO_USER = "demo"
_TICK_S = 0.25
ACK_WAIT_S = 5.0  # JetStream sends a dead gateway's unacknowledged messages again after this


class _Gateways:
    """The gateway processes on the cluster: started, SIGKILLed, started again in the demo's ExitStack."""

    def __init__(self, stack: ExitStack, cluster: NatsCluster, runtime: Path, data: DataDir, config: Path) -> None:
        self._stack = stack
        self._data = data
        self._config = config
        self._argv = [sys.executable, "-m", "gateway.jetstream_main", "--config", str(config)]
        self._argv += ["--ack-wait", f"{ACK_WAIT_S:g}"]
        for url, broker in zip(cluster.urls, cluster.mqtt_brokers, strict=True):
            self._argv += ["--nats", url, "--broker", broker]
        self.running: Child = self._start("gateway")

    def _start(self, name: str) -> Child:
        return self._stack.enter_context(child(name, self._argv, self._data.logs / "gateway.log", "subscribed"))

    def kill(self) -> str:
        """SIGKILL the gateway and start it again, as systemd would (same state file, same durable consumer)."""
        pid = self.running.process.pid
        self.running.process.send_signal(signal.SIGKILL)
        self.running.process.wait()
        started = time.monotonic()
        self.running = self._start("gateway (restarted)")
        return (
            f"SIGKILLed the gateway (pid {pid}); its restart (pid {self.running.process.pid}) took its durable"
            f" consumer over after {time.monotonic() - started:.1f} s; what the dead one had fetched and not"
            f" acknowledged JetStream sends again after {ACK_WAIT_S:g} s"
        )


def _nodes(cluster: NatsCluster, out: TextIO) -> None:
    for node in cluster.nodes:
        pid = node.process.pid if node.process else "?"
        print(f"started nats-server {node.server_name} pid {pid}: NATS {node.port}, MQTT {node.mqtt_port}", file=out)


def run_cluster(duration: float, speed: float, data: DataDir, keep: bool, out: TextIO = sys.stdout) -> int:
    """Start the cluster deployment, kill its gateway part-way, until ``duration`` seconds pass (0: Ctrl-C)."""
    if data.fresh():
        print(f"replaced the previous demo's data in {data.path}", file=out)
    runtime = Path(tempfile.mkdtemp(prefix="coldchain-demo-cluster-"))
    record: dict[str, object] = {"version": 1, "started_ms": int(time.time() * 1000), "complete": False}
    handover: Handover | None = None
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with ExitStack() as stack:
            cluster = NatsCluster(runtime / "nats").start()
            stack.callback(cluster.stop)
            _nodes(cluster, out)
            influx = InfluxDB(data.influxd).start()
            stack.callback(influx.stop)
            print(f"started influxd pid {influx.process.pid if influx.process else '?'} at {influx.url}", file=out)
            record["influx_port"] = influx.port
            data.write(record)
            data.write_influx_toml(influx.url)
            node = cluster.nodes[0]
            config = write_gateway_config(runtime, node.host, node.mqtt_port, influx.url, LATE_AFTER_S / speed)
            gateways = _Gateways(stack, cluster, runtime, data, config)
            password = secrets.token_urlsafe(9)
            board_port = free_port()
            board = write_board_config(
                runtime, board_port, (node.host, node.mqtt_port), influx.url,
                user=DEMO_USER, password_hash=hash_password(password),
            )  # fmt: skip
            argv = [sys.executable, "-m", "board", "--config", str(board)]
            stack.enter_context(child("board", argv, data.logs / "board.log", "board listening"))
            header = [
                f"coldchain demo --cluster: board http://127.0.0.1:{board_port}/ (sign in as {DEMO_USER!r},"
                f" password {password!r})",
                "Ctrl-C stops everything",
            ]
            view = DemoView(tuple(c.crate for c in CRATES), out, out.isatty(), header)
            staff = BrokerSettings(node.host, cluster.nodes[1].mqtt_port, protocol="3.1.1")
            handover = Handover(view, influx, gateways.kill, staff, speed=speed)
            watcher = watch(node.host, cluster.nodes[2].mqtt_port, view, (*SUBSCRIPTIONS, ACKS), handover.handle)
            stack.callback(watcher.loop_stop)
            stack.callback(watcher.disconnect)
            _start_crates(stack, runtime, data, cluster, speed)
            if not out.isatty():
                for line in header:
                    print(line, file=out, flush=True)
            deadline = time.monotonic() + duration if duration else None
            try:
                while deadline is None or time.monotonic() < deadline:
                    handover.step()
                    view.refresh()
                    time.sleep(_TICK_S)
            except (KeyboardInterrupt, StopRequestedError):
                pass
            view.close()
            print("\nstopping everything the demo started", file=out, flush=True)
            record.update(ended_ms=int(time.time() * 1000), complete=True)
            data.write(record)
    except (KeyboardInterrupt, StopRequestedError):
        print("\nstopped before the demo was up", file=out, flush=True)
    except (ServiceError, OSError) as exc:
        print(f"coldchain demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if keep:
            print(f"kept {runtime}", file=out)
        else:
            shutil.rmtree(runtime, ignore_errors=True)
    verdict = handover.verdict if handover is not None else None
    said = {True: "lost nothing", False: "LOST OR DOUBLED READINGS", None: "was not seen to the end"}[verdict]
    print(f"hand-over {said}", file=out)
    print("demo stopped", file=out, flush=True)
    return 0 if verdict is not False else 1


def _start_crates(stack: ExitStack, runtime: Path, data: DataDir, cluster: NatsCluster, speed: float) -> None:
    for crate in CRATES:
        link = runtime / f"tty-{crate.crate}"
        stack.enter_context(
            child(f"sim {crate.crate}", sim_argv(crate, link, speed), data.logs / f"sim-{crate.crate}.log", "device")
        )
        agent = write_agent_config(runtime, crate.crate, link, "", 0, brokers=cluster.mqtt_brokers)
        argv = [sys.executable, "-m", "edge", "--config", str(agent)]
        stack.enter_context(child(f"agent {crate.crate}", argv, data.logs / f"agent-{crate.crate}.log", None))
