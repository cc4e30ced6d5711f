"""``coldchain demo``: the whole system on this machine, with nothing to set up.

Starts a private mosquitto and influxd on free loopback ports in a temp
directory, a gateway, and three simulated crates (each a firmware simulator on a
pseudo-terminal plus an edge agent). Crate C-0003's shipper warms into an
excursion. Readings and alarms are printed as they cross the broker; Ctrl-C (or
``--duration``) stops everything that was started.
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import paho.mqtt.client as mqtt

from cli.services import InfluxDB, Mosquitto, ServiceError
from coldchain.argtypes import non_negative
from coldchain.helptext import help_text

__all__ = ["main"]

PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles.toml"


@dataclass(frozen=True)
class DemoCrate:
    """A simulated crate: its id and how its shipper behaves."""

    crate: str
    start_c: float
    warm_rate_c_per_min: float = 0.0
    warm_after_s: float = 0.0


CRATES = (
    DemoCrate("C-0001", -186.0),
    DemoCrate("C-0002", -182.0),
    # a dry shipper running out of nitrogen: warms through -160 (warning) and -150 (critical)
    DemoCrate("C-0003", -172.0, warm_rate_c_per_min=60.0, warm_after_s=5.0),
)


class _StopRequestedError(Exception):
    """SIGTERM arrived: unwind like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _StopRequestedError


@contextmanager
def _child(name: str, argv: list[str], log: Path, ready: str | None, timeout: float = 30.0) -> Iterator[str]:
    """Run a program until the block ends; yield its first output line containing ``ready``.

    With ``ready`` None the program is not waited for. Its output goes to ``log``.
    """
    sink = log.open("ab")
    # own session: Ctrl-C reaches only the demo, which then stops the children in order
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sink, start_new_session=True)
    print(f"started {name} pid {process.pid}", flush=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_copy_output, args=(process, sink, lines), daemon=True).start()
    try:
        yield "" if ready is None else _wait_for(lines, ready, timeout, name, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        sink.close()


def _copy_output(process: subprocess.Popen[bytes], sink: BinaryIO, lines: queue.Queue[str | None]) -> None:
    """Copy the child's stdout to its log, line by line, and hand each line to the waiter."""
    assert process.stdout is not None
    for raw in process.stdout:
        sink.write(raw)
        sink.flush()
        lines.put(raw.decode(errors="replace").strip())
    lines.put(None)


def _wait_for(lines: queue.Queue[str | None], ready: str, timeout: float, name: str, log: Path) -> str:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            raise ServiceError(f"{name} exited before saying {ready!r}; its log: {log}\n{_tail(log)}")
        if ready in line:
            return line
    raise ServiceError(f"{name} did not say {ready!r} within {timeout:.0f} s; its log: {log}\n{_tail(log)}")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-1500:] if path.exists() else ""


def _write_gateway_config(workdir: Path, broker: Mosquitto, influx: InfluxDB) -> Path:
    config = workdir / "gateway.toml"
    config.write_text(
        f"""[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "coldchain-gateway"

[influxdb]
api = "v1"
url = "{influx.url}"
database = "coldchain"

[profiles]
file = {json.dumps(str(PROFILES))}
default = "cryo"

[state]
file = "gateway-state.sqlite"
"""
    )
    return config


def _write_agent_config(workdir: Path, crate: str, device: str, broker: Mosquitto) -> Path:
    config = workdir / f"agent-{crate}.toml"
    config.write_text(
        f"""[crate]
id = "{crate}"
profile = "cryo"

[profiles]
file = {json.dumps(str(PROFILES))}

[mqtt]
host = "{broker.host}"
port = {broker.port}

[spool]
path = "spool-{crate}.sqlite"

[[probes]]
driver = "serial"
port = "{device}"
sensors = ["probe1"]
"""
    )
    return config


def _watch(broker: Mosquitto) -> mqtt.Client:
    """Print telemetry and alarms as they cross the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="coldchain-demo-watch")

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        c.subscribe([("coldchain/v1/crates/+/telemetry", 1), ("coldchain/v1/alarms/#", 1)])

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if message.topic.startswith("coldchain/v1/alarms/"):
            print(
                f"ALARM  {body.get('crate')} {body.get('rule')} {body.get('sensor')}: {body.get('state')} "
                f"({body.get('severity')}, {body.get('value_c')} °C vs {body.get('threshold_c')} °C, "
                f"seq {body.get('seq')})",
                flush=True,
            )
        else:
            values = ", ".join(
                f"{r.get('sensor')}={r.get('value_c')}" + (f" [{r['fault']}]" if r.get("fault") else "")
                for r in body.get("readings", [])
            )
            print(f"reading {body.get('crate')} seq {body.get('seq')}: {values}", flush=True)

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _summary(influx: InfluxDB) -> None:
    try:
        counts = influx.rows("SELECT COUNT(value_c) FROM temperature GROUP BY crate")
        alarms = influx.rows("SELECT * FROM alarm")
    except (OSError, ServiceError) as exc:
        print(f"summary unavailable: {exc}")
        return
    for row in counts:
        print(f"stored {row['count']} readings of crate {row['crate']} in InfluxDB")
    print(f"{len(alarms)} alarm transition(s) recorded in InfluxDB measurement 'alarm'")


def run(duration: float, keep: bool) -> int:
    """Start everything, watch until ``duration`` seconds pass (0: until Ctrl-C), stop everything."""
    workdir = Path(tempfile.mkdtemp(prefix="coldchain-demo-"))
    python = sys.executable
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with ExitStack() as stack:
            broker = Mosquitto(workdir / "mosquitto").start()
            stack.callback(broker.stop)
            print(f"started mosquitto pid {broker.process.pid if broker.process else '?'} on port {broker.port}")
            influx = InfluxDB(workdir / "influxd").start()
            stack.callback(influx.stop)
            print(f"started influxd pid {influx.process.pid if influx.process else '?'} at {influx.url}")
            gateway = _write_gateway_config(workdir, broker, influx)
            stack.enter_context(
                _child(
                    "gateway",
                    [python, "-m", "gateway", "--config", str(gateway)],
                    workdir / "gateway.log",
                    "subscribed",
                )
            )
            watcher = _watch(broker)
            stack.callback(watcher.loop_stop)
            stack.callback(watcher.disconnect)
            for crate in CRATES:
                # a stable symlink, not the bare /dev/pts/N: freed pty numbers are reused
                link = workdir / f"tty-{crate.crate}"
                sim_argv = [python, "-m", "firmware_sim", "--sensor", "probe1", "--period", "1"]
                sim_argv += ["--start", str(crate.start_c), "--link", str(link)]
                if crate.warm_rate_c_per_min:
                    sim_argv += ["--warm-rate", str(crate.warm_rate_c_per_min), "--warm-after", str(crate.warm_after_s)]
                stack.enter_context(
                    _child(f"sim {crate.crate}", sim_argv, workdir / f"sim-{crate.crate}.log", "device")
                )
                agent = _write_agent_config(workdir, crate.crate, str(link), broker)
                stack.enter_context(
                    _child(
                        f"agent {crate.crate}",
                        [python, "-m", "edge", "--config", str(agent)],
                        workdir / f"agent-{crate.crate}.log",
                        None,
                    )
                )
            print("demo running: readings and alarms follow (Ctrl-C stops)", flush=True)
            deadline = time.monotonic() + duration if duration else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
            _summary(influx)
    except (KeyboardInterrupt, _StopRequestedError):
        print("\nstopping everything the demo started", flush=True)
    except ServiceError as exc:
        print(f"coldchain demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("demo stopped", flush=True)
    return 0


def main(argv: list[str], prog: str = "coldchain demo") -> int:
    """Parse the demo's options and run it."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=non_negative, default=0.0, help="stop after this many seconds (0: at Ctrl-C)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, data) afterwards")
    args = parser.parse_args(argv)
    return run(args.duration, args.keep)
