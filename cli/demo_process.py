"""What both demos (on mosquitto, on the NATS cluster) share: their child processes and their broker watcher.

A child runs in a session of its own, its output copied to its log; the demo waits for its
ready line and stops it (SIGTERM, then SIGKILL) when its block ends. The watcher feeds the
demo's view with what crosses the broker.
"""

from __future__ import annotations

import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO, TextIO

import paho.mqtt.client as mqtt

from adapters.mqtt_client import broker_client
from cli.demo_view import SUBSCRIPTIONS, DemoView
from cli.mqtt_read import BrokerSettings
from cli.services import ServiceError

__all__ = ["Child", "DemoRun", "StopRequestedError", "child", "demo_run", "on_sigterm", "tell", "watch"]

TICK_S = 0.25  # how often the view is redrawn and the story looks at the clock


class StopRequestedError(Exception):
    """SIGTERM arrived: unwind like Ctrl-C."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The demos' SIGTERM handler: stop as on Ctrl-C, stopping every child in order."""
    raise StopRequestedError


class Child:
    """A started program whose output lines can be waited for."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.lines: queue.Queue[str | None] = queue.Queue()

    def wait_for(self, ready: str, timeout: float = 30.0) -> str:
        """The first output line (from now) containing ``ready``; ServiceError when it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise ServiceError(
                    f"{self.name} exited before saying {ready!r}; its log: {self.log}\n{_tail(self.log)}"
                )
            if ready in line:
                return line
        raise ServiceError(
            f"{self.name} did not say {ready!r} within {timeout:.0f} s; its log: {self.log}\n{_tail(self.log)}"
        )


@dataclass
class DemoRun:
    """A demo's temp directory (configs, spools, the broker's files), and whether a service failed."""

    runtime: Path
    failed: bool = False


@contextmanager
def demo_run(prefix: str, keep: bool, out: TextIO) -> Iterator[DemoRun]:
    """A temp directory for the run, SIGTERM taken as Ctrl-C; a service's failure is said and marked, not raised.

    The directory is removed at the end unless ``keep``.
    """
    run = DemoRun(Path(tempfile.mkdtemp(prefix=prefix)))
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield run
    except (KeyboardInterrupt, StopRequestedError):
        print("\nstopped before the demo was up", file=out, flush=True)
    except (ServiceError, OSError) as exc:
        print(f"coldchain demo: {exc}", file=sys.stderr)
        run.failed = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if keep:
            print(f"kept {run.runtime}", file=out)
        else:
            shutil.rmtree(run.runtime, ignore_errors=True)


@contextmanager
def child(name: str, argv: list[str], log: Path, ready: str | None, timeout: float = 30.0) -> Iterator[Child]:
    """Run a program until the block ends, once its output said ``ready`` (None: not waited for here).

    Its output goes to ``log``. A child that was killed meanwhile (the cluster demo's gateway) is left as it is.
    """
    sink = log.open("ab")
    # own session: Ctrl-C reaches only the demo, which then stops the children in order
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sink, start_new_session=True)
    print(f"started {name} pid {process.pid}", flush=True)
    started = Child(name, process, log)
    threading.Thread(target=_copy_output, args=(process, sink, started.lines), daemon=True).start()
    try:
        if ready is not None:
            started.wait_for(ready, timeout)
        yield started
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


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-1500:] if path.exists() else ""


def watch(
    host: str,
    port: int,
    view: DemoView,
    topics: Sequence[str] = SUBSCRIPTIONS,
    *,
    also: Callable[[str, bytes], None] | None = None,
    unmap: Callable[[str], str] = str,
) -> mqtt.Client:
    """Feed the view (and ``also``, if given) with what crosses the broker on ``topics``, over MQTT 3.1.1.

    ``unmap`` gives a message's topic as published (the cluster moves telemetry into partitions).
    """
    settings = BrokerSettings(host, port, protocol="3.1.1")
    client = broker_client(settings, f"coldchain-demo-{secrets.token_hex(4)}", mqtt.Client)

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        c.subscribe([(topic, 1) for topic in topics])

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        # an exception leaving this callback would end paho's network thread and freeze the view:
        # whatever one message holds (any payload, a topic that is not UTF-8), the next one comes
        try:
            topic = unmap(message.topic)
            view.handle(topic, bytes(message.payload))
            if also is not None:
                also(topic, bytes(message.payload))
        except Exception:  # the decoders are total: this is the last guard
            view.ignored += 1

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    return client


def tell(step: Callable[[], None], view: DemoView, duration: float, out: TextIO) -> None:
    """Advance the story and redraw the view every tick until ``duration`` s pass (0: until Ctrl-C or SIGTERM)."""
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            step()
            view.refresh()
            time.sleep(TICK_S)
    except (KeyboardInterrupt, StopRequestedError):
        pass
    view.close()
    print("\nstopping everything the demo started", file=out, flush=True)
