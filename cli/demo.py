"""coldchain demo: the whole system on this machine, telling its story in two minutes.

Starts a private mosquitto (in a temp directory) and influxd (its data kept) on free
loopback ports, a gateway, the staff board, and three simulated crates (each a firmware
simulator on a pseudo-terminal plus an edge agent). C-0003 runs out of nitrogen:
warning, critical, a staff acknowledgement, re-icing, cleared. C-0002 loses its network
while its lid is open: its excursion arrives late, from its spool. A live view shows one
line per crate. Ctrl-C (or --duration) stops everything that was started and prints
the commands to try on the data it keeps: --serve-data serves it, --clean removes it;
a new run replaces it.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import signal
import socket
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from board.auth import hash_password
from cli.demo_cluster import run_cluster
from cli.demo_link import Relay
from cli.demo_process import StopRequestedError, child, demo_run, on_sigterm, tell, watch
from cli.demo_setup import (
    CRATES,
    OFFLINE_CRATE,
    STORY_CRATE,
    DataDir,
    DemoError,
    default_data_dir,
    sim_argv,
    write_agent_config,
    write_board_config,
    write_gateway_config,
)
from cli.demo_story import LATE_AFTER_S, Story
from cli.demo_view import DemoView
from cli.mqtt_read import BrokerSettings
from cli.services import InfluxDB, Mosquitto, ServiceError, free_port
from coldchain.helptext import help_text
from coldchain.settings.argtypes import finite, non_negative

__all__ = ["main"]

DEMO_USER = "demo"
# Faster, and the lateness limit (LATE_AFTER_S / speed) nears the live delay of a loaded machine;
# the story's margins (C-0002's excursion ends 30 simulated seconds before it reconnects) hold up to here.
MIN_SPEED, MAX_SPEED = 0.25, 5.0


def _iso_minute(ms: int) -> str:
    return datetime.fromtimestamp(ms // 60_000 * 60, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _commands(data: DataDir, started_ms: int) -> list[str]:
    """The commands to try on the kept data (they read it where ``--serve-data`` serves it)."""
    config = f"--config {shlex.quote(str(data.influx_toml))}"
    since = f"--from {_iso_minute(started_ms)}"
    story, offline = (next(c for c in CRATES if c.crate == crate) for crate in (STORY_CRATE, OFFLINE_CRATE))
    return [
        f"coldchain query {STORY_CRATE} {since} --summary {config}",
        f"coldchain query {OFFLINE_CRATE} {since} {config}",
        f"coldchain report {story.shipment} --out {story.shipment}.pdf {config}",
        f"coldchain report {offline.shipment} --format json {config}",
    ]


def _demo_option(data: DataDir) -> str:
    return "" if data.path == default_data_dir() else f" --data-dir {shlex.quote(str(data.path))}"


def _print_commands(data: DataDir, started_ms: int, out: TextIO) -> None:
    print(
        f"\nThe demo's data is kept in {data.path} ('coldchain demo{_demo_option(data)} --clean' removes it).", file=out
    )
    print("To explore it, serve it (until Ctrl-C) with", file=out)
    print(f"    coldchain demo{_demo_option(data)} --serve-data", file=out)
    print("and meanwhile, in another terminal, try:", file=out)
    for command in _commands(data, started_ms):
        print(f"    {command}", file=out)


def _summary(influx: InfluxDB, out: TextIO) -> None:
    try:
        counts = influx.rows("SELECT COUNT(value_c) FROM temperature GROUP BY crate")
        alarms = influx.rows("SELECT * FROM alarm")
    except (OSError, ServiceError) as exc:
        print(f"summary unavailable: {exc}", file=out)
        return
    for row in counts:
        print(f"stored {row['count']} readings of crate {row['crate']} in InfluxDB", file=out)
    late = sum(1 for row in alarms if row.get("late") is True)
    print(f"{len(alarms)} alarm transition(s) recorded in InfluxDB measurement 'alarm' ({late} late)", file=out)


def _start_crates(
    stack: ExitStack, runtime: Path, data: DataDir, *, broker: Mosquitto, relay: Relay, speed: float
) -> None:
    python = sys.executable
    for crate in CRATES:
        # a stable symlink, not the bare /dev/pts/N: freed pty numbers are reused
        link = runtime / f"tty-{crate.crate}"
        stack.enter_context(
            child(f"sim {crate.crate}", sim_argv(crate, link, speed), data.logs / f"sim-{crate.crate}.log", "device")
        )
        host, port = (relay.host, relay.port) if crate.crate == OFFLINE_CRATE else (broker.host, broker.port)
        agent = write_agent_config(runtime, crate.crate, link, host, port)
        argv = [python, "-m", "edge", "--config", str(agent)]
        stack.enter_context(child(f"agent {crate.crate}", argv, data.logs / f"agent-{crate.crate}.log", None))


def _services(
    stack: ExitStack, runtime: Path, data: DataDir, speed: float, password: str
) -> tuple[Mosquitto, InfluxDB, str]:
    """Broker, database, gateway and board; returns the board's URL too."""
    broker = Mosquitto(runtime / "mosquitto").start()
    stack.callback(broker.stop)
    print(f"started mosquitto pid {broker.process.pid if broker.process else '?'} on port {broker.port}")
    influx = InfluxDB(data.influxd).start()
    stack.callback(influx.stop)
    print(f"started influxd pid {influx.process.pid if influx.process else '?'} at {influx.url}")
    gateway = write_gateway_config(runtime, broker.host, broker.port, influx.url, LATE_AFTER_S / speed)
    python = sys.executable
    argv = [python, "-m", "gateway", "--config", str(gateway)]
    stack.enter_context(child("gateway", argv, data.logs / "gateway.log", "subscribed"))
    board_port = free_port()
    board = write_board_config(
        runtime,
        board_port,
        (broker.host, broker.port),
        influx.url,
        user=DEMO_USER,
        password_hash=hash_password(password),
    )
    argv = [python, "-m", "board", "--config", str(board)]
    stack.enter_context(child("board", argv, data.logs / "board.log", "board listening"))
    return broker, influx, f"http://127.0.0.1:{board_port}/"


def run(duration: float, speed: float, data: DataDir, keep: bool, out: TextIO = sys.stdout) -> int:
    """Start everything, tell the story until ``duration`` seconds pass (0: until Ctrl-C), stop everything."""
    if data.fresh():
        print(f"replaced the previous demo's data in {data.path}", file=out)
    started_ms = int(time.time() * 1000)
    record: dict[str, object] = {"version": 1, "started_ms": started_ms, "complete": False}
    tty = out.isatty()
    with demo_run("coldchain-demo-", keep, out) as session, ExitStack() as stack:
        runtime = session.runtime
        password = secrets.token_urlsafe(9)
        broker, influx, board_url = _services(stack, runtime, data, speed, password)
        record["influx_port"] = influx.port
        data.write(record)
        data.write_influx_toml(influx.url)
        relay = Relay(broker.host, broker.port).start()
        stack.callback(relay.stop)
        header = [
            f"coldchain demo: board {board_url} (sign in as {DEMO_USER!r}, password {password!r})",
            "Ctrl-C stops everything and prints the commands to try on the data",
        ]
        view = DemoView(tuple(c.crate for c in CRATES), out, tty, header)
        watcher = watch(broker.host, broker.port, view)
        stack.callback(watcher.loop_stop)
        stack.callback(watcher.disconnect)
        _start_crates(stack, runtime, data, broker=broker, relay=relay, speed=speed)
        story = Story(view, relay, BrokerSettings(broker.host, broker.port), speed)
        if not tty:  # on a terminal the view's frame shows it
            for line in header:
                print(line, file=out, flush=True)
        tell(story.step, view, duration, out)
        _summary(influx, out)
        record.update(ended_ms=int(time.time() * 1000), complete=True)
        data.write(record)
    if session.failed:
        return 1
    if "influx_port" in record:  # InfluxDB ran: its data is there to explore
        _print_commands(data, started_ms, out)
    print("demo stopped", file=out, flush=True)
    return 0


def serve_data(data: DataDir, out: TextIO = sys.stdout) -> int:
    """Serve the kept data with a private influxd (on the demo's port when free) until Ctrl-C."""
    record = data.read()
    wanted = int(record["influx_port"])
    influx = InfluxDB(data.influxd, port=wanted if _port_free(wanted) else None)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        influx.start()
        data.write_influx_toml(influx.url)
        print(f"serving the demo's data at {influx.url} (Ctrl-C stops); try:", file=out)
        for command in _commands(data, int(record.get("started_ms", 0))):
            print(f"    {command}", file=out, flush=True)
        while influx.running:
            time.sleep(0.5)
        print("influxd stopped on its own; its log: " + str(influx.log), file=sys.stderr)
        return 1
    except (KeyboardInterrupt, StopRequestedError):
        return 0
    except ServiceError as exc:
        print(f"coldchain demo: {exc}", file=sys.stderr)
        return 1
    finally:
        influx.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str], prog: str = "coldchain demo") -> int:
    """Parse the demo's options and run it (or serve or remove its data)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=non_negative, default=0.0, help="stop after this many seconds (0: at Ctrl-C)"
    )
    parser.add_argument(
        "--speed",
        type=finite,
        default=1.0,
        help=f"tell the story this many times faster, {MIN_SPEED:g} to {MAX_SPEED:g} (default 1: about 2 minutes)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"where the data is kept (default {default_data_dir()})",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--serve-data", action="store_true", help="serve the kept data for query/report until Ctrl-C")
    action.add_argument("--clean", action="store_true", help="remove the kept data")
    parser.add_argument("--keep", action="store_true", help="also keep the temp directory (configs, spools, broker)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the fleet deployment instead: three NATS nodes, a gateway SIGKILLed part-way (docs/cluster.md)",
    )
    args = parser.parse_args(argv)
    if not MIN_SPEED <= args.speed <= MAX_SPEED:
        parser.error(f"--speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}")
    data = DataDir(args.data_dir)
    try:
        with data.locked(removing=args.clean):
            if args.clean:
                print(f"removed {data.path}" if data.remove() else f"nothing to remove at {data.path}")
                return 0
            if args.serve_data:
                return serve_data(data)
            if args.cluster:
                return run_cluster(args.duration, args.speed, data, args.keep)
            return run(args.duration, args.speed, data, args.keep)
    except DemoError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
