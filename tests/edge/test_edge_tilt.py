"""The agent's serial reader hears the simulated board's accelerometer over a real pty."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from edge_helpers import Listen, PtyBoard, RunAgent, agent_config, wait_until
from sim_scenarios import EPOCH_MS, load

from cli.services import Mosquitto
from coldchain.sentences import TiltSentence
from edge.clock import Clock
from edge.config import SerialProbeConfig
from edge.events import Event, Notice
from edge.probes.serial_board import SerialBoard
from firmware_sim.board import emit_until

DAY_S = 86_400.0


def _simulated_lines(start_s: float, end_s: float) -> bytes:
    """What the cryo-tipped-jolt board sends between two simulated times."""
    board = load("cryo-tipped-jolt").board(seed=1, epoch_ms=EPOCH_MS)
    return b"".join(line for t, line in emit_until(board, end_s) if t >= start_s)


def test_reader_reports_orientation_changes_and_the_shock_not_every_tilt(board: PtyBoard) -> None:
    """Five minutes around the drop: the first angle, the tipped angle and one shock, nothing repeated."""
    clock = Clock(wall_ms=lambda: 1_795_000_000_000, mono_ms=lambda: 1_000)
    reader = SerialBoard(SerialProbeConfig(sensors=("probe1",), port=board.device, time_source="board"), clock)
    events: list[Event] = []
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(events.append, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: reader.device is not None, 10, "port open")
        board.write(_simulated_lines(DAY_S - 120, DAY_S + 180))
        wait_until(lambda: len([e for e in events if isinstance(e, Notice)]) >= 3, 10, "tilt notices")
    finally:
        stop.set()
        thread.join(5)
    notices = [(e.event, e.ts - EPOCH_MS, e.detail) for e in events if isinstance(e, Notice)]
    assert notices == [
        ("orientation", (DAY_S - 120) * 1000, {"probe": board.device, "tilt_deg": 0.0}),
        ("orientation", DAY_S * 1000, {"probe": board.device, "tilt_deg": 88.5}),
        ("shock", DAY_S * 1000, {"probe": board.device, "shock_g": 3.5, "tilt_deg": 88.5}),
    ]


@pytest.mark.integration
def test_tilt_and_shock_are_published_as_crate_events(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, run_agent: RunAgent
) -> None:
    """The agent publishes the board's orientation and shock on the crate's events topic."""
    crate = f"{crate_prefix}-T"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    probe = f'[[probes]]\ndriver = "serial"\nport = "{board.device}"\nsensors = ["probe1"]\n'
    run = run_agent(agent_config(tmp_path, crate, mosquitto, probes=probe), with_probes=True)
    wait_until(lambda: run.agent.probes[0].device is not None, 10, "port open")  # type: ignore[attr-defined]
    board.write(TiltSentence(91.0, 4.25).encode())
    got = wait_until(lambda: len(listener.on("/events")) >= 2 and listener.on("/events"), 10, "tilt events")
    assert [(e["event"], e["tilt_deg"], e.get("shock_g")) for e in got] == [
        ("orientation", 91.0, None),
        ("shock", 91.0, 4.25),
    ]
