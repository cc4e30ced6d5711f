"""Helpers for the gateway's tests: config files, a gateway process, a publisher and a listener on the real broker."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from wait_helpers import wait_until

from cli.services import InfluxDB, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "config" / "profiles.toml"
TS = 1_764_086_400_000


def gateway_config(
    tmp_path: Path,
    broker: Mosquitto,
    influx: InfluxDB | str,
    database: str,
    extra: str = "",
    client_id: str | None = None,
    influx_extra: str = "",
) -> Path:
    """A gateway TOML in ``tmp_path`` for this broker and database; ``extra`` appends tables."""
    url = influx if isinstance(influx, str) else influx.url
    path = tmp_path / "gateway.toml"
    if "[alarms]" not in extra:
        # test data is mostly old (TS): announce its alarms at the next tick instead of holding them for 60 s
        extra = f"{extra}\n[alarms]\nhold_s = 0\n"
    path.write_text(
        f"""[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "{client_id or f"gw-{database}"}"
reconnect_min_s = 0.2
reconnect_max_s = 1
# a test's session must not keep queueing the shared broker's telemetry for long after the test
session_expiry = "60s"

[influxdb]
url = "{url}"
database = "{database}"
{influx_extra}

[batch]
linger = 0.05
retry_min = 0.1
retry_max = 0.5
ack_interval = 0.2

[profiles]
file = {json.dumps(str(PROFILES))}
default = "cryo"
{extra}
"""
    )
    return path


class GatewayProcess:
    """``python -m gateway`` as a child process; waits for its ``subscribed`` line.

    Every instance is registered until stopped: the ``gateway_cleanup`` fixture of conftest.py (or ``with``) stops
    whatever a failing test left running, so one failure never leaves a gateway on the
    session broker for the tests after it.
    """

    running: ClassVar[list[GatewayProcess]] = []

    def __init__(
        self, config: Path, log: Path, wait: bool = True, env: dict[str, str] | None = None, code: str = ""
    ) -> None:
        """``env`` adds to the environment; ``code`` (Python) runs the gateway instead of ``-m gateway``."""
        self.log = log
        self._lines: queue.Queue[str | None] = queue.Queue()
        program = ["-c", code] if code else ["-m", "gateway"]
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, *program, "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                text=True,
                env={**os.environ, **(env or {})},
            )
        GatewayProcess.running.append(self)
        threading.Thread(target=self._pump, daemon=True).start()
        if wait:
            try:
                # a bound, not a pause: two test workers on two cores can make the start take well over 15 s
                self.wait_for("subscribed", timeout=30.0)
            except BaseException:
                self.stop(kill=True)  # the caller never gets hold of it: nobody else could stop it
                raise

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """The first stdout line containing ``text``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"gateway exited ({self.process.wait()}); log:\n{self.stderr()}")
            if text in line:
                return line
        raise AssertionError(f"gateway did not print {text!r}; log:\n{self.stderr()}")

    def stderr(self) -> str:
        """What the gateway logged so far."""
        return self.log.read_text(errors="replace")[-4000:]

    @classmethod
    def stop_leftovers(cls) -> None:
        """Stops (SIGKILL) every gateway a test started and did not stop."""
        while cls.running:
            cls.running[-1].stop(kill=True)

    def stop(self, kill: bool = False, timeout: float = 15.0) -> int:
        """SIGTERM (or SIGKILL) and wait; the exit code. A gateway deaf to SIGTERM is killed, and the test fails."""
        if self in GatewayProcess.running:
            GatewayProcess.running.remove(self)
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"gateway ignored SIGTERM for {timeout:.0f} s; log:\n{self.stderr()}") from None


def run_gateway(config: Path, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run the gateway to completion (for start-up errors)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def telemetry(crate: str, seq: int, value: float | None = -170.0, ts: int | None = None, **extra: Any) -> bytes:
    """A v1 telemetry payload with one reading of ``probe1`` (a fault when ``value`` is a string)."""
    reading: dict[str, Any] = {"sensor": "probe1", "value_c": value}
    if isinstance(value, str):
        reading = {"sensor": "probe1", "value_c": None, "fault": value}
    body = {"v": 1, "crate": crate, "seq": seq, "ts": ts if ts is not None else TS + seq * 1000, "readings": [reading]}
    body.update(extra)
    return json.dumps(body).encode()


class Client:
    """A plain MQTT client on the test broker: publishes QoS 1 and records what it receives."""

    def __init__(self, broker: Mosquitto, topics: Iterable[str] = ()) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = list(topics)
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        if self._topics:
            self._client.subscribe([(t, 1) for t in self._topics])
            assert self._subscribed.wait(5), "test subscription not confirmed"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def received(self, prefix: str = "") -> list[dict[str, Any]]:
        """JSON bodies received on topics starting with ``prefix``."""
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.startswith(prefix)]

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK."""
        self._client.publish(topic, payload, qos=1).wait_for_publish(5)

    def send(self, crate: str, seqs: Iterable[int], **kwargs: Any) -> None:
        """Telemetry of ``crate`` for each seq, in order."""
        infos = [
            self._client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, s, **kwargs), qos=1)
            for s in seqs
        ]
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


Connect = Callable[..., Client]  # the ``connect`` fixture: Client's arguments, closed after the test


def count(influx: InfluxDB, database: str, crate: str, field: str = "seq") -> int:
    """How many temperature points ``crate`` has in ``database``."""
    rows = influx.rows(f"SELECT COUNT({field}) FROM temperature WHERE crate = '{crate}'", database)
    return int(rows[0]["count"]) if rows else 0  # type: ignore[call-overload]


class Feeder:
    """Publishes telemetry of one crate for the given seqs in a thread, riding out broker restarts."""

    def __init__(self, broker: Mosquitto, crate: str, seqs: Iterable[int], interval_s: float = 0.002) -> None:
        self.crate = crate
        self.sent: list[int] = []
        self._mids: list[int] = []
        self._acked: set[int] = set()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"feeder-{crate}")
        self._client.on_publish = lambda client, userdata, mid, reason, props: self._acked.add(mid)
        self._client.reconnect_delay_set(1, 1)
        self._client.max_queued_messages_set(0)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, args=(list(seqs), interval_s), daemon=True)
        self._thread.start()

    def _run(self, seqs: list[int], interval_s: float) -> None:
        topic = f"coldchain/v1/crates/{self.crate}/telemetry"
        for seq in seqs:
            # while the broker is down paho queues the message and sends it after reconnecting
            self._mids.append(self._client.publish(topic, telemetry(self.crate, seq), qos=1).mid)
            self.sent.append(seq)
            time.sleep(interval_s)

    def wait(self, timeout: float = 20.0) -> list[int]:
        """Wait until every message was published and PUBACKed by the broker; the seqs sent."""
        self._thread.join(timeout)
        wait_until(lambda: self._acked.issuperset(self._mids), timeout, "PUBACKs of every message")
        self._client.disconnect()
        self._client.loop_stop()
        return self.sent


def seqs_stored(influx: InfluxDB, database: str, crate: str) -> list[int]:
    """The seq of every temperature point of ``crate``, in time order."""
    rows = influx.rows(f"SELECT seq FROM temperature WHERE crate = '{crate}'", database)
    return [int(r["seq"]) for r in rows]  # type: ignore[call-overload]


def gaps_stored(influx: InfluxDB, database: str, crate: str) -> list[tuple[int, int, int, str]]:
    """(first_missing, last_missing, missing, state) of every gap point of ``crate``."""
    query = f"SELECT first_missing, last_missing, missing, state FROM gap WHERE crate = '{crate}'"
    rows = influx.rows(query, database)
    return [(r["first_missing"], r["last_missing"], r["missing"], r["state"]) for r in rows]  # type: ignore[misc]
