"""The parts of ``bench/influx_outage.py``: a private broker with the shipped limits, the gateway, a crate fleet.

Each part starts only its own process or connection, and stops only that.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from cli.services import InfluxDB, Mosquitto, ServiceError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_BROKER = ROOT / "config" / "mosquitto" / "coldchain.conf"
# the shipped broker's durability and limits; listener, logins, ACL and TLS are replaced by loopback + anonymous
BROKER_KEYS = ("autosave_interval", "max_queued_messages", "max_queued_bytes", "max_inflight_messages")
BROKER_KEYS += ("persistent_client_expiration", "message_size_limit", "max_keepalive", "set_tcp_nodelay")
RECEIVE_MAXIMUM = 1000  # the gateway's window (its default): un-acknowledged messages the broker may send it
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
DB = "coldchain"


def broker_conf(port: int, workdir: Path) -> tuple[str, dict[str, str]]:
    """A private broker configuration with the shipped settings of BROKER_KEYS; (text, those settings)."""
    shipped: dict[str, str] = {}
    for line in SHIPPED_BROKER.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in BROKER_KEYS:
            shipped[key] = value.strip()
    user = "user root" if os.geteuid() == 0 else ""  # mosquitto drops root unless told: it could not enter our dir
    settings = "\n".join(f"{k} {v}" for k, v in shipped.items())
    text = f"""listener {port} 127.0.0.1
{user}
allow_anonymous true
persistence true
persistence_location {workdir}/
{settings}
log_dest stderr
log_type error
log_type warning
log_type notice
"""
    return text, shipped


def gateway_conf(path: Path, broker: Mosquitto, influx: InfluxDB) -> None:
    """The gateway's TOML: shipped defaults (batch 500, retry back-off up to 30 s), a state and health file."""
    path.write_text(
        f"""[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "coldchain-gateway-outage"
receive_maximum = {RECEIVE_MAXIMUM}

[influxdb]
url = "{influx.url}"
database = "{DB}"

[profiles]
file = {json.dumps(str(ROOT / "config" / "profiles.toml"))}
default = "cryo"

[state]
file = {json.dumps(str(path.parent / "state.sqlite"))}

[monitoring]
interval = "1s"
health_file = {json.dumps(str(path.parent / "health.json"))}
"""
    )


def proc_figures(pid: int) -> tuple[float, float]:
    """(VmRSS in MB, utime + stime in s) of a process; (0, 0) when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    rss = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)
    return rss, (int(stat[11]) + int(stat[12])) / CLOCK_TICK


class Fleet:
    """One MQTT client publishing for every crate, round-robin, paced to ``rate`` messages/s."""

    def __init__(self, broker: Mosquitto, crates: int, rate: float) -> None:
        self.crates = [f"C-{i + 1:04d}" for i in range(crates)]
        self.rate = rate
        self.published = 0
        self.acked = 0
        self.seq = dict.fromkeys(self.crates, 0)
        self._last_ts = dict.fromkeys(self.crates, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"outage-fleet-{os.getpid()}")
        self._client.on_publish = self._on_publish
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.connect(broker.host, broker.port, keepalive=60)
        self._client.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acked += 1

    def say_online(self) -> None:
        """Each crate's retained online status, as the agent publishes it on connecting (arms the stale rule)."""
        now = int(time.time() * 1000)
        infos = [
            self._client.publish(
                f"coldchain/v1/crates/{crate}/status",
                json.dumps({"v": 1, "crate": crate, "state": "online", "ts": now}, separators=(",", ":")),
                qos=1,
                retain=True,
            )
            for crate in self.crates
        ]
        for info in infos:
            info.wait_for_publish(10)
        with self._lock:
            self.acked = 0  # from here on: telemetry only

    def start(self, max_s: float) -> None:
        """Publish until stop() or ``max_s`` seconds."""
        self._thread = threading.Thread(target=self._run, args=(max_s,), name="fleet", daemon=True)
        self._thread.start()

    def _run(self, max_s: float) -> None:
        rnd = random.Random(7)
        t0 = time.monotonic()
        limit = int(max_s * self.rate) + 1
        for i in range(limit):
            if self._stop.is_set():
                return
            pause = t0 + i / self.rate - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                return
            crate = self.crates[i % len(self.crates)]
            seq = self.seq[crate] + 1
            ts = max(int(time.time() * 1000), self._last_ts[crate] + 1)
            value = -170.0 + rnd.uniform(-0.5, 0.5)  # well inside cryo: no threshold alarm, only what the outage causes
            payload = (
                f'{{"v":1,"crate":"{crate}","seq":{seq},"ts":{ts},'
                f'"readings":[{{"sensor":"probe1","value_c":{value:.2f}}}]}}'
            )
            self._client.publish(f"coldchain/v1/crates/{crate}/telemetry", payload, qos=1)
            self.seq[crate], self._last_ts[crate] = seq, ts
            self.published += 1

    def stop(self, ack_timeout: float = 60.0) -> None:
        """Stop publishing and wait (bounded) for the broker's PUBACKs of everything published."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        deadline = time.monotonic() + ack_timeout
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


class Gateway:
    """``python -m gateway --config F`` as a child; waits for its ``subscribed`` line."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.subscribed = threading.Event()
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                text=True,
            )
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.subscribed.wait(30):
            self.stop()
            raise ServiceError(f"gateway did not subscribe within 30 s; log:\n{self.log.read_text()[-3000:]}")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "subscribed" in line:
                self.subscribed.set()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
