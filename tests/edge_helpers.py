"""Helpers for the edge agent's tests: a real pty board, a broker-side listener, agent processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockSPIDevice
from wait_helpers import wait_until

from cli.services import Mosquitto
from coldchain.sentences import ClockSentence, HeartbeatSentence, TemperatureSentence
from coldchain.topics import storage_ack_topic
from coldchain.wire import StorageAck, encode

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "config" / "profiles.toml"


class PtyBoard:
    """The probe board's side of a real pseudo-terminal: tests write sentences into the master."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # as the board's UART would be: no echo, no line editing
        self.device = os.ttyname(self._slave)

    def write(self, data: bytes) -> None:
        """Send raw bytes to the agent."""
        os.write(self.master, data)

    def tick(self, values: dict[str, float | str], board_ms: int | None = None) -> None:
        """One burst: optional CCTIM, then a CCTMP per sensor (a string value is a fault status)."""
        out = ClockSentence(board_ms).encode() if board_ms is not None else b""
        for sensor, value in values.items():
            if isinstance(value, str):
                out += TemperatureSentence(sensor, 0.0, value).encode()
            else:
                out += TemperatureSentence(sensor, value).encode()
        self.write(out)

    def heartbeat(self, uptime_s: int = 1) -> None:
        """Send a CCHBT."""
        self.write(HeartbeatSentence(uptime_s, "1.0.0", 3300).encode())

    def read_available(self, timeout: float = 0.5) -> bytes:
        """What the agent wrote to the board (commands), waiting up to ``timeout`` for the first byte."""
        import select

        ready, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, 4096) if ready else b""

    def close(self) -> None:
        """Close both ends (the board vanishes)."""
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Listener:
    """A subscriber on the real broker that records every message it receives."""

    def __init__(self, broker: Mosquitto, topics: list[str], client_id: str | None = None) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        persistent = client_id is not None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or "",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.05, 0.2)
        self._topics = topics

        def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
            c.subscribe([(t, 1) for t in self._topics])

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, props: Any) -> None:
            self._subscribed.set()

        def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append((m.topic, json.loads(m.payload), bool(m.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self._subscribed.wait(5), "listener did not get its subscription confirmed"

    def on(self, suffix: str) -> list[dict[str, Any]]:
        """Payloads received on topics ending with ``suffix``."""
        with self._lock:
            return [body for topic, body, _ in self.messages if topic.endswith(suffix)]

    def telemetry(self) -> list[dict[str, Any]]:
        """Telemetry payloads received, in arrival order."""
        return self.on("/telemetry")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def send_ack(broker: Mosquitto, crate: str, stored_through: int) -> None:
    """Publish the gateway's storage ack for ``crate``, retained, as the gateway does."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    payload = encode(StorageAck(crate, stored_through))
    client.publish(storage_ack_topic(crate), payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def write_config(directory: Path, crate: str, broker: Mosquitto, device: str, extra: str = "", probe: str = "") -> Path:
    """An agent config for ``crate`` reading the pty ``device``, with fast test timings; ``extra`` appends tables."""
    probes = f"""[[probes]]
driver = "serial"
port = "{device}"
sensors = ["probe1", "probe2"]
tick_timeout_s = 0.2
{probe}
"""
    return agent_config(directory, crate, broker, extra=extra, probes=probes)


class AgentProcess:
    """``python -m edge --config FILE`` as a child process, its log in the config's directory."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.log = config.parent / "agent.log"
        self._offset = self.log.stat().st_size if self.log.exists() else 0  # restarts append to the same log
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge", "--config", str(config), "--log-level", "DEBUG"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
            )

    def text(self) -> str:
        """What this process has logged so far."""
        with self.log.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout: float = 10.0) -> None:
        """Wait until the log contains ``needle``."""
        wait_until(lambda: needle in self.text() or self.process.poll() is not None, timeout, repr(needle))
        assert needle in self.text(), (
            f"agent exited ({self.process.returncode}) before logging {needle!r}:\n{self.text()}"
        )

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, and the exit status within ``timeout``."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a power cut would."""
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        """Make sure the process is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class InProcessAgent:
    """An Agent running in a thread of the test, fed Samples directly (no probe threads)."""

    def __init__(
        self,
        config_path: Path,
        with_probes: bool = False,
        pin_factory: Any = None,
        clock: Any = None,
        probes: list[Any] | None = None,
    ) -> None:
        from edge.__main__ import build_probes
        from edge.agent import Agent
        from edge.clock import system_clock
        from edge.config import load_config

        self.config = load_config(config_path)
        clock = clock or system_clock()
        if probes is None:
            probes = build_probes(self.config, clock, pin_factory) if with_probes else []
        self.agent = Agent(self.config, probes, clock, pin_factory=pin_factory)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop_event,), daemon=True)
        self.thread.start()

    def sample(self, ts: int, **values: float) -> None:
        """Hand the agent one tick, as a probe thread would."""
        from coldchain.wire import Reading
        from edge.events import Sample

        readings = tuple(Reading(name, value) for name, value in sorted(values.items()))
        self.agent.inbox.put(Sample(ts, int(time.monotonic() * 1000), readings))

    def stop(self) -> None:
        """Stop the loop (flush, offline status, disconnect) and wait for it."""
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "agent loop did not stop"


# The conftest fixtures that start these parts and stop them after the test, as test parameters' types.
Listen = Callable[..., Listener]
RunAgent = Callable[..., InProcessAgent]
SpawnAgent = Callable[..., AgentProcess]


def agent_config(
    directory: Path,
    crate: str,
    broker: Mosquitto,
    spool: str = "",
    mqtt_extra: str = "",
    extra: str = "",
    probes: str = '[[probes]]\ndriver = "serial"\nport = "loop://"\nsensors = ["probe1"]\n',
    profile: str = "cryo",
    local_alarms: bool = True,
) -> Path:
    """A config for an agent (by default its probe is never opened: samples are fed directly to it in-process);
    ``local_alarms`` gives it the shipped profiles, so the crate judges its own readings too."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "agent.toml"
    profiles = f"[profiles]\nfile = {json.dumps(str(PROFILES))}\n" if local_alarms else ""
    path.write_text(
        f"""[crate]
id = "{crate}"
profile = "{profile}"

{profiles}
[mqtt]
host = "{broker.host}"
port = {broker.port}
reconnect_min_s = 0.05
reconnect_max_s = 0.3
{mqtt_extra}

[spool]
path = "spool.sqlite"
{spool}

{extra}

{probes}
"""
    )
    return path


def prefill_spool(path: Path, crate: str, count: int, ts0: int = 1_795_000_000_000) -> None:
    """Put ``count`` telemetry messages (seq 0..count-1) in a spool in one transaction (a long offline spell)."""
    import sqlite3

    from coldchain.wire import Reading, Telemetry
    from edge.spool import Spool

    Spool(path, max(count, 10)).close()  # schema, pragmas and seq reservation as the agent makes them
    rows = [
        (seq, ts0 + seq * 1000, encode(Telemetry(crate, seq, ts0 + seq * 1000, (Reading("probe1", -170.0),), "cryo")))
        for seq in range(count)
    ]
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO telemetry (seq, ts, payload) VALUES (?, ?, ?)", rows)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (count,))
    db.close()
    path.with_name(path.name + ".seq").write_text(f"{count + 10_000}\n")


class MockMCP3008(MockSPIDevice):
    """The slave side of an MCP3008 on gpiozero's mock SPI pins: answers each channel with a set voltage ratio."""

    def __init__(self, pin_factory: Any) -> None:
        super().__init__(11, 10, 9, 8, pin_factory=pin_factory)
        self.ratios = [0.5] * 8  # V_in / V_ref per channel
        self._state = "idle"

    def on_start(self) -> None:
        super().on_start()
        self._state = "idle"

    def on_bit(self) -> None:
        if self._state == "idle":
            if self.rx_buf[-1]:  # start bit
                self._state = "mode"
                self.rx_buf = []
        elif self._state == "mode":
            self._state = "channel"  # single-ended (1) is all the agent uses
            self.rx_buf = []
        elif self._state == "channel":
            if len(self.rx_buf) == 3:
                raw = max(0, min(1023, round(self.ratios[self.rx_word()] * 1024)))
                self.tx_word(raw, 12)  # a null bit, then 10 data bits, MSB first (gpiozero reads 12)
                self._state = "result"
        elif self._state == "result" and not self.tx_buf:
            self._state = "idle"
            self.rx_buf = []
