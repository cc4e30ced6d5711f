"""Accelerated scenarios: how fast the simulator turns simulated days into sentences.

Measures the pure board (no I/O) over a whole scenario, and ``coldchain sim --speed``
over a real pty read by pyserial, the way the agent reads it.

    .venv/bin/python bench/sim_speed.py --scenario config/scenarios/cryo-normal-5d.toml --period 60 --days 10
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import serial

from firmware_sim.board import emit_until
from firmware_sim.scenario import parse_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=Path("config/scenarios/cryo-normal-5d.toml"))
    parser.add_argument("--period", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=1_000_000.0)
    parser.add_argument("--days", type=float, default=None, help="run this long instead of the scenario's duration")
    args = parser.parse_args()
    scenario = parse_scenario(tomllib.loads(args.scenario.read_text()), str(args.scenario))
    duration_s = args.days * 86_400 if args.days else scenario.duration_s
    days = duration_s / 86_400
    started = time.perf_counter()
    lines = sum(1 for _ in emit_until(scenario.board(1, 1_764_086_400_000, True, args.period), duration_s))
    pure = time.perf_counter() - started
    print(f"pure board: {days:g} simulated days, {lines} lines in {pure:.2f} s ({lines / pure:.0f} lines/s)")

    argv = [sys.executable, "-m", "firmware_sim", "--scenario", str(args.scenario), "--period", str(args.period)]
    argv += ["--speed", str(args.speed), "--epoch-ms", "1764086400000", "--seed", "1", "--duration", str(duration_s)]
    sim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    device = sim.stdout.readline().split(" ", 1)[1].strip()
    received = 0
    started = time.perf_counter()
    with serial.Serial(device, 115200, timeout=1) as port:
        while True:
            try:  # read what is there, as the agent does: a read that waits to fill loses its bytes at close
                chunk = port.read(max(1, port.in_waiting))
            except serial.SerialException:
                break
            if not chunk and sim.poll() is not None:
                break
            received += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    sim.wait()
    print(f"pty, --speed {args.speed:g}: {received} lines in {elapsed:.2f} s ({received / elapsed:.0f} lines/s)")


if __name__ == "__main__":
    main()
