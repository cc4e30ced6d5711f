"""``coldchain demo``: the README's first command shows readings and an alarm, and cleans up after Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_demo_shows_readings_and_the_alarm_then_stops_everything_on_ctrl_c() -> None:
    """Within a minute the warming crate's critical alarm appears; SIGINT leaves no process behind."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    alarm = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line.rstrip())
            if line.startswith("ALARM") and "critical_high" in line and "active" in line:
                alarm.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert alarm.wait(timeout=75), "no critical alarm within 75 s:\n" + "\n".join(lines[-30:])
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=40)
        reader.join(timeout=5)
    pids = [int(m.group(1)) for line in lines if (m := re.match(r"started .* pid (\d+)", line))]
    assert code == 0, "\n".join(lines[-30:])
    assert len(pids) == 9, lines[:12]  # mosquitto, influxd, gateway, 3 x (sim, agent)
    readings = [line for line in lines if line.startswith("reading C-000")]
    assert {line.split()[1] for line in readings} == {"C-0001", "C-0002", "C-0003"}
    critical = [line for line in lines if line.startswith("ALARM") and "critical_high" in line and "active" in line]
    assert len(critical) == 1
    assert "C-0003" in critical[0]
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)], "processes left behind"
    assert lines[-1] == "demo stopped"
