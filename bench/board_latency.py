"""Alarm latency of the board: a retained alarm published to the broker -> its row visible in Chromium.

Starts a private mosquitto and influxd, a real board, and Debian's chromium through Playwright;
publishes N alarms one after another and reports min/median/p95/max in milliseconds, from just
before the publish (which waits for the broker's PUBACK) until Playwright sees the alarm's row in
the page: broker, board, server-sent event, the page's redraw, and Playwright's own polling.

    .venv/bin/python bench/board_latency.py --alarms 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from board_helpers import PASSWORD, alarm_payload, mqtt_client, publish, start_board, write_config
from playwright.sync_api import sync_playwright

from cli.services import InfluxDB, Mosquitto


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="board-bench-"))
    broker, influx = Mosquitto(work / "mosquitto").start(), InfluxDB(work / "influxd").start()
    board = start_board(write_config(work / "board", broker.port, influx.url, "bench"))
    latencies: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"{board.url}/login")
            page.fill("input[name=user]", "ops")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#live.live")
            with mqtt_client(broker.port) as (client, _):
                for i in range(args.alarms):
                    crate = f"BENCH-{i}"
                    started = time.monotonic()
                    publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate))
                    page.wait_for_selector(f'.alarm[data-alarm="{crate}/critical_high/probe1"]', timeout=5000)
                    latencies.append((time.monotonic() - started) * 1000)
            browser.close()
    finally:
        board.stop()
        broker.stop()
        influx.stop()
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"{len(latencies)} alarms, publish -> row visible in Chromium: min {latencies[0]:.1f} ms, "
        f"median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
