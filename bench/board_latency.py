"""Alarm latency of the board: a retained alarm published to the broker -> its row visible in Chromium.

Starts a private mosquitto and influxd, a real board, and Debian's chromium through Playwright;
publishes N alarms one after another and reports min/median/p95/max in milliseconds, from just
before the publish (which waits for the broker's PUBACK) until Playwright sees the alarm's row in
the page: broker, board, server-sent event, the page's redraw, and Playwright's own polling.

    .venv/bin/python bench/board_latency.py --alarms 50
    .venv/bin/python bench/board_latency.py --alarms 50 --telemetry-rate 2000 --crates 200

With ``--telemetry-rate`` a second client floods telemetry from ``--crates`` crates meanwhile, so
the figure shows whether a busy fleet delays alarms on the board.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import json

from board_helpers import (
    PASSWORD,
    RunningBoard,
    alarm_payload,
    mqtt_client,
    publish,
    sign_in,
    start_board,
    write_config,
)
from playwright.sync_api import sync_playwright

from cli.services import InfluxDB, Mosquitto


def flood(port: int, rate: int, crates: int, stop: Any, sent: Any) -> None:
    """Publish telemetry at ``rate`` messages/s (QoS 0) round-robin over ``crates`` crates until ``stop``."""
    with mqtt_client(port) as (client, _):
        seq = 0
        started = time.monotonic()
        while not stop.is_set():
            crate = f"LOAD-{seq % crates}"
            body = {
                "v": 1,
                "crate": crate,
                "seq": seq,
                "ts": int(time.time() * 1000),
                "readings": [{"sensor": "probe1", "value_c": -170.0 - (seq % 10) / 10}],
            }
            client.publish(f"coldchain/v1/crates/{crate}/telemetry", json.dumps(body), qos=0)
            seq += 1
            ahead = seq / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        sent.value = seq


class StreamWatch:
    """Reads the board's event stream like a page does and notes when each crate's alarm first appears."""

    def __init__(self, url: str, cookie: str) -> None:
        request = urllib.request.Request(f"{url}/api/events", headers={"Cookie": cookie})
        self._stream = urllib.request.urlopen(request, timeout=30)
        self._seen: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def event(self, crate: str) -> threading.Event:
        with self._lock:
            return self._seen.setdefault(crate, threading.Event())

    def _read(self) -> None:
        kind = ""
        for raw in self._stream:
            line = raw.decode()
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: ") and kind == "alarms":
                for alarm in json.loads(line[6:]):
                    self.event(alarm["crate"]).set()


def measure(args: argparse.Namespace, board_url: str, broker_port: int) -> list[float]:
    """Publish the alarms one by one and time each until it is seen (in the page, or in the stream)."""
    latencies: list[float] = []
    with sync_playwright() as playwright:
        if args.sse:
            watch = StreamWatch(board_url, sign_in(RunningBoard(board_url, None, None))[1])  # type: ignore[arg-type]
        else:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"{board_url}/login")
            page.fill("input[name=user]", "ops")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#live.live")
        with mqtt_client(broker_port) as (client, _):
            for i in range(args.alarms):
                crate = f"BENCH-{i}"
                started = time.monotonic()
                publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate))
                if args.sse:
                    assert watch.event(crate).wait(5), crate
                else:
                    page.wait_for_selector(f'.alarm[data-alarm="{crate}/critical_high/probe1"]', timeout=5000)
                latencies.append((time.monotonic() - started) * 1000)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=50)
    parser.add_argument("--telemetry-rate", type=int, default=0, help="telemetry messages/s meanwhile")
    parser.add_argument("--crates", type=int, default=100, help="crates the telemetry comes from")
    parser.add_argument("--sse", action="store_true", help="time until the event stream has it (no browser)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="board-bench-"))
    broker, influx = Mosquitto(work / "mosquitto").start(), InfluxDB(work / "influxd").start()
    board = start_board(write_config(work / "board", broker.port, influx.url, "bench"))
    # the load comes from a process of its own, so it never competes with the measuring side for the GIL
    stop, sent = multiprocessing.Event(), multiprocessing.Value("q", 0)
    loader = multiprocessing.Process(target=flood, args=(broker.port, args.telemetry_rate, args.crates, stop, sent))
    try:
        if args.telemetry_rate:
            loader.start()
            time.sleep(2)  # let the board reach a steady state under load
        load_started = time.monotonic()
        latencies = measure(args, board.url, broker.port)
        stop.set()
        if args.telemetry_rate:
            loader.join()
            rate = sent.value / (time.monotonic() - load_started + 2)
            print(f"telemetry meanwhile: {rate:.0f} messages/s from {args.crates} crates")
    finally:
        stop.set()
        board.stop()
        broker.stop()
        influx.stop()
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    where = "event stream" if args.sse else "row visible in Chromium"
    print(
        f"{len(latencies)} alarms, publish -> {where}: min {latencies[0]:.1f} ms, "
        f"median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
