"""Edge agent benchmark: CPU per 1,000 readings, peak RSS, and the drain time of a 24 h backlog.

Run:  .venv/bin/python bench/bench_agent.py [--ticks 3000] [--backlog 86400]

1. Sampling: a real ``coldchain agent`` process reads three probes from a pty board
   whose 1 Hz ticks are accelerated (sent as fast as the agent takes them, one burst
   at a time), spools and publishes them to a private mosquitto, with the gateway's
   storage acks sent every 100 messages. CPU = utime + stime of the agent process.
2. Drain: a spool holding 86,400 messages (24 h at 1 Hz) is drained by a fresh agent
   into a private broker; the time runs from the agent's start until a subscriber has
   received every message.
Peak RSS is the agent's VmHWM from /proc at the end of each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import paho.mqtt.client as mqtt

from cli.services import Mosquitto
from coldchain.sentences import TemperatureSentence
from coldchain.wire import Reading, StorageAck, Telemetry, encode
from edge.spool import Spool

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
IDLE_S = 10.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Counter:
    """A QoS 1 subscriber counting telemetry, which may also send the gateway's storage acks."""

    def __init__(self, broker: Mosquitto, crate: str, ack_every: int = 0) -> None:
        self.count = 0
        self.last_seq = -1
        self.crate = crate
        self.ack_every = ack_every
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(f"coldchain/v1/crates/{crate}/telemetry", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("subscriber not ready")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.count += 1
        self.last_seq = max(self.last_seq, json.loads(message.payload)["seq"])
        if self.ack_every and self.count % self.ack_every == 0:
            ack = encode(StorageAck(self.crate, self.last_seq))
            client.publish(f"coldchain/v1/crates/{self.crate}/ack", ack, qos=1)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def write_config(directory: Path, crate: str, broker: Mosquitto, device: str) -> Path:
    """An agent config with three probes on one board."""
    path = directory / "agent.toml"
    path.write_text(
        f"""[crate]
id = "{crate}"
profile = "cryo"
[profiles]
file = "{ROOT / "config" / "profiles.toml"}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
[spool]
path = "spool.sqlite"
[[probes]]
driver = "serial"
port = "{device}"
sensors = ["probe1", "probe2", "probe3"]
"""
    )
    return path


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    """``python -m edge`` with its log beside the config."""
    log = (config.parent / "agent.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "--config", str(config), "--log-level", "WARNING"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_for(predicate: object, timeout: float) -> bool:
    """Poll until ``predicate()`` is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def sampling(workdir: Path, broker: Mosquitto, ticks: int) -> dict[str, float]:
    """Phase 1: accelerated 1 Hz sampling of three probes."""
    crate = "BENCH-SAMPLE"
    master, slave = os.openpty()
    tty.setraw(slave)
    counter = Counter(broker, crate, ack_every=100)
    agent = start_agent(write_config(workdir / "sample", crate, broker, os.ttyname(slave)))
    try:
        time.sleep(1.0)  # interpreter start, port open, broker connect
        idle_start = cpu_seconds(agent.pid)
        time.sleep(IDLE_S)  # between samples a real agent mostly waits: what does waiting cost?
        idle_cpu_percent = (cpu_seconds(agent.pid) - idle_start) / IDLE_S * 100
        cpu_before = cpu_seconds(agent.pid)
        start = time.monotonic()
        for i in range(ticks):
            value = -180.0 + (i % 100) / 10
            os.write(
                master,
                b"".join(TemperatureSentence(f"probe{n}", value + n).encode() for n in (1, 2, 3)),
            )
            # one burst at a time, as a board does: the next when this one has gone out
            if not wait_for(lambda i=i: counter.count > i, 10):
                raise RuntimeError(f"tick {i} not delivered")
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(agent.pid) - cpu_before
        rss = peak_rss_mb(agent.pid)
    finally:
        agent.terminate()
        agent.wait(10)
        counter.close()
        os.close(master)
        os.close(slave)
    readings = ticks * 3
    return {
        "ticks": ticks,
        "readings": readings,
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_1000_readings": cpu * 1000 / (readings / 1000),
        "idle_cpu_percent": idle_cpu_percent,
        # at a real 1 Hz, 1,000 readings of 3 probes take 333 s: busy work plus idle waiting
        "cpu_ms_per_1000_readings_at_1hz": cpu * 1000 / (readings / 1000) + idle_cpu_percent / 100 * 333 * 1000,
        "peak_rss_mb": rss,
    }


def prefill(path: Path, crate: str, count: int) -> None:
    """A spool holding ``count`` unacknowledged messages (seq 0..count-1), written in one transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Spool(path, max(count, 10)).close()
    ts0 = 1_795_000_000_000
    readings = (Reading("probe1", -180.0), Reading("probe2", -179.0), Reading("probe3", -178.0))
    rows = [
        (seq, ts0 + seq * 1000, encode(Telemetry(crate, seq, ts0 + seq * 1000, readings, "cryo")))
        for seq in range(count)
    ]
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO telemetry (seq, ts, payload) VALUES (?, ?, ?)", rows)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (count,))
    db.close()
    path.with_name(path.name + ".seq").write_text(f"{count + 10_000}\n")


def drain(workdir: Path, broker: Mosquitto, backlog: int) -> dict[str, float]:
    """Phase 2: drain a 24 h backlog into the broker."""
    crate = "BENCH-DRAIN"
    directory = workdir / "drain"
    prefill(directory / "spool.sqlite", crate, backlog)
    counter = Counter(broker, crate)
    master, slave = os.openpty()
    config = write_config(directory, crate, broker, os.ttyname(slave))
    start = time.monotonic()
    agent = start_agent(config)
    try:
        if not wait_for(lambda: counter.count >= backlog, 300):
            raise RuntimeError(f"only {counter.count} of {backlog} arrived")
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(agent.pid)
        rss = peak_rss_mb(agent.pid)
    finally:
        agent.terminate()
        agent.wait(10)
        counter.close()
        os.close(master)
        os.close(slave)
    return {
        "messages": backlog,
        "received": counter.count,
        "elapsed_s": elapsed,
        "rate_per_s": backlog / elapsed,
        "cpu_s": cpu,
        "peak_rss_mb": rss,
    }


def main() -> int:
    """Run both phases on a private broker and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=3000, help="accelerated 1 Hz ticks of 3 probes (default 3000)")
    parser.add_argument("--backlog", type=int, default=86_400, help="spooled messages to drain (default 86400)")
    args = parser.parse_args()
    if not 1 <= args.ticks <= 100_000 or not 1 <= args.backlog <= 1_000_000:
        parser.error("--ticks must be 1..100000 and --backlog 1..1000000")
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        workdir = Path(tmp)
        (workdir / "sample").mkdir()
        broker = Mosquitto(workdir / "mosquitto").start()
        try:
            results = {"sampling": sampling(workdir, broker, args.ticks), "drain": drain(workdir, broker, args.backlog)}
        finally:
            broker.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
