"""How long the people's commands take on a full 14-day shipment (2 probes, one reading per 10 s).

Starts a private influxd in a temp dir, writes the shipment through /write, then times
``coldchain query --summary`` and ``coldchain report`` (PDF and JSON) as a user runs them.

    .venv/bin/python bench/cli_report.py [--days 14] [--period-s 10]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cli.services import InfluxDB

REPO = Path(__file__).resolve().parent.parent


def _write(server: InfluxDB, days: int, period_s: int) -> tuple[int, int]:
    urllib.request.urlopen(
        urllib.request.Request(f"{server.url}/query", data=b"q=CREATE+DATABASE+coldchain"), timeout=10
    ).close()
    count = days * 86_400 // period_s
    start = (int(time.time() * 1000) - days * 86_400_000) // 60_000 * 60_000
    batch: list[str] = []
    for i in range(count):
        ts = start + i * period_s * 1000
        # a slow LN2 boil-off (+20 °C over the trip) with a daily wobble, and one warm hour on day 9
        value = -190.0 + 20.0 * i / count + 1.5 * math.sin(i / 8640 * 2 * math.pi)
        if 9 * 8640 <= i < 9 * 8640 + 360:
            value = -148.0
        for sensor, offset in (("probe1", 0.0), ("probe2", -3.0)):
            batch.append(
                f"temperature,crate=C-BENCH,profile=cryo,sensor={sensor} value_c={value + offset:.2f},seq={i}i {ts}"
            )
        if len(batch) >= 10_000 or i == count - 1:
            request = urllib.request.Request(
                f"{server.url}/write?db=coldchain&precision=ms", data="\n".join(batch).encode(), method="POST"
            )
            urllib.request.urlopen(request, timeout=60).close()
            batch = []
    return count * 2, start


def _time(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    """Write the shipment, time each command, print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--period-s", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxDB(Path(tmp) / "influxd").start()
        try:
            points, _ = _write(server, args.days, args.period_s)
            influx = ["--influx-url", server.url]
            since = ["--since", f"{args.days + 1}d"]
            runs = {
                "query --summary": ["query", "C-BENCH", "--summary", *since, *influx],
                "query --csv": ["query", "C-BENCH", "--csv", *since, *influx],
                "report --format json": ["report", "C-BENCH", "--format", "json", "--out", f"{tmp}/r.json", *influx],
                "report (PDF)": ["report", "C-BENCH", "--out", f"{tmp}/r.pdf", *influx],
            }
            print(f"{points} readings ({args.days} days, 2 probes, every {args.period_s} s)\n")
            print("| command | seconds |\n|---|---|")
            for name, argv in runs.items():
                print(f"| `coldchain {name}` | {_time(argv):.2f} |")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
