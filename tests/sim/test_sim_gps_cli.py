"""``coldchain sim gps``: the simulated receiver along cryo-air-route, read over its pty like the agent does."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import serial
from sim_helpers import running_sim

from edge.probes.nmea import GpsUpdate, read_nmea

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"


def test_sim_gps_sends_the_whole_route_with_its_fix_gaps_and_exits() -> None:
    """26 h at one fix per 10 min: 157 RMC+GGA pairs, the fix lost three times and regained three times."""
    args = ["gps", "--scenario", str(SCENARIOS / "cryo-air-route.toml"), "--interval", "600", "--speed", "600000"]
    with running_sim(*args) as sim:
        port = serial.Serial(sim.device, timeout=0.2)
        lines: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(lines) < 314 and time.monotonic() < deadline:
            try:
                line = port.readline()
            except serial.SerialException:
                break  # the simulator closed the device at the end of the route
            if line.strip():
                lines.append(line)
        port.close()
        assert sim.process.wait(10) == 0
    updates = [read_nmea(line) for line in lines]
    assert len(updates) == 314
    rmc = [u for u in updates if isinstance(u, GpsUpdate) and u.sentence == "RMC"]
    fixes = [u.fix for u in rmc]
    changes = [fix for previous, fix in zip([None, *fixes[:-1]], fixes, strict=True) if previous != fix]
    assert changes == [True, False, True, False, True, False, True]


def test_sim_gps_refuses_a_scenario_without_a_route() -> None:
    """cryo-tipped has no [route]: exit 2 with one line saying so, no device."""
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "gps", "--scenario", str(SCENARIOS / "cryo-tipped.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "has no [route]" in result.stderr
    assert result.stdout == ""
