"""Scheduled sensor and board faults, through the pure board: what the agent would receive."""

from __future__ import annotations

import math
import random

import pytest

from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    CommandSentence,
    HeartbeatSentence,
    LidSentence,
    Sentence,
    TemperatureSentence,
    parse_sentence,
)
from firmware_sim.board import Board, BoardSpec, emit_until
from firmware_sim.faults import Fault
from firmware_sim.sensor import Probe


def _board(*faults: Fault, lid: list[tuple[float, bool]] | None = None, noise: float = 0.0) -> Board:
    spec = BoardSpec([Probe("p1", noise_c=noise), Probe("p2", noise_c=noise)], 1.0, 5.0, False, 0, faults, lid)
    return Board(spec, lambda t: -80.0 + t / 100.0, random.Random(3))


def _timed(board: Board, end_s: float) -> list[tuple[float, Sentence]]:
    return [(t, parse_sentence(line)) for t, line in emit_until(board, end_s)]


def _temps(board: Board, end_s: float, sensor: str) -> list[tuple[float, TemperatureSentence]]:
    return [(t, s) for t, s in _timed(board, end_s) if isinstance(s, TemperatureSentence) and s.sensor == sensor]


@pytest.mark.parametrize("kind", ["open", "short"])
def test_open_or_short_probe_reports_its_status_during_the_fault_only(kind: str) -> None:
    """p1 reports OPEN/SHORT (value 0.00) from 10 s to 20 s; p2 is unaffected."""
    board = _board(Fault(kind, 10.0, 20.0, "p1"))
    statuses = {t: s.status for t, s in _temps(board, 30, "p1")}
    assert {t for t, status in statuses.items() if status != "OK"} == set(range(10, 20))
    assert statuses[15] == kind.upper()
    assert all(s.status == "OK" for _, s in _temps(_board(Fault(kind, 10.0, 20.0, "p1")), 30, "p2"))


def test_stuck_probe_repeats_its_last_good_value_with_status_ok() -> None:
    """While stuck, p1 repeats the value it read just before the fault, reporting OK."""
    readings = dict(_temps(_board(Fault("stuck", 10.0, 20.0, "p1")), 25, "p1"))
    assert {readings[t].celsius for t in range(10, 20)} == {readings[9].celsius}
    assert all(readings[t].status == "OK" for t in range(25))
    assert readings[20].celsius != readings[9].celsius


def test_spikes_jump_by_their_magnitude_with_their_probability() -> None:
    """With probability 0.2, about a fifth of samples jump by exactly ±30 °C."""
    readings = _temps(_board(Fault("spikes", 0.0, math.inf, "p1", magnitude_c=30.0, probability=0.2)), 1000, "p1")
    deviations = [round(s.celsius - (-80.0 + t / 100.0), 2) for t, s in readings]
    spikes = [d for d in deviations if d != 0]
    assert set(spikes) <= {30.0, -30.0}
    assert 150 < len(spikes) < 250


def test_drift_grows_by_its_rate_per_hour() -> None:
    """A 6 °C/h drift from t=0 reads 1 °C high after 10 minutes."""
    board = _board(Fault("drift", 0.0, math.inf, "p1", magnitude_c=6.0))
    readings = dict(_temps(board, 601, "p1"))
    assert readings[600].celsius == pytest.approx(-80.0 + 6.0 + 1.0, abs=0.011)


def test_corrupt_lines_fail_their_checksum_only_inside_the_window() -> None:
    """During the corrupt fault every line fails its checksum; before and after, none does."""
    board = _board(Fault("corrupt", 10.0, 20.0, probability=1.0))
    problems: dict[float, str] = {}
    for t, line in emit_until(board, 30):
        try:
            parse_sentence(line)
        except SentenceError as exc:
            problems[t] = str(exc)
    assert set(problems) == set(map(float, range(10, 20)))
    assert all(problem.startswith("checksum mismatch") for problem in problems.values())


def test_heartbeat_stop_silences_heartbeats_but_not_samples() -> None:
    """No CCHBT between 10 and 30 s, CCTMP every second throughout."""
    timed = _timed(_board(Fault("heartbeat_stop", 10.0, 30.0)), 40)
    beats = [t for t, s in timed if isinstance(s, HeartbeatSentence)]
    assert beats == [0.0, 5.0, 30.0, 35.0]
    assert len([t for t, s in timed if isinstance(s, TemperatureSentence)]) == 80


def test_brownout_lowers_the_supply_then_resets_the_board() -> None:
    """Supply falls from 5000 mV; below 4300 mV the board is silent; afterwards uptime restarts from 0."""
    board = _board(Fault("brownout", 100.0, 200.0, supply_mv=4000, reset_mv=4300))
    timed = _timed(board, 260)
    beats = {t: s for t, s in timed if isinstance(s, HeartbeatSentence)}
    assert beats[95.0].supply_mv == 5000
    assert beats[150.0].supply_mv == 4500
    assert not [t for t, _ in timed if 171 <= t < 200]  # in reset: nothing at all
    assert (beats[200.0].uptime_s, beats[200.0].supply_mv) == (0, 5000)
    assert beats[255.0].uptime_s == 55


def test_lid_switch_reports_state_at_boot_and_on_every_change() -> None:
    """A board with a lid switch sends CLOSED at boot, then OPEN and CLOSED when the lid moves."""
    timed = _timed(_board(lid=[(12.0, True), (15.0, False)]), 20)
    assert [(t, s) for t, s in timed if isinstance(s, LidSentence)] == [
        (0.0, LidSentence("CLOSED")),
        (12.0, LidSentence("OPEN")),
        (15.0, LidSentence("CLOSED")),
    ]


def test_disconnect_fault_takes_the_link_down_for_its_window() -> None:
    """link_up is False exactly while a disconnect fault is active."""
    board = _board(Fault("disconnect", 10.0, 30.0))
    assert [board.link_up(t) for t in (9.9, 10.0, 29.9, 30.0)] == [True, False, False, True]


def test_fault_ending_before_it_starts_is_refused() -> None:
    """A fault whose end is not after its start is a ValueError that says so."""
    with pytest.raises(ValueError, match="ends"):
        Fault("open", 10.0, 5.0, "p1")


def test_board_in_brownout_reset_ignores_commands() -> None:
    """While held in reset by a brown-out the board answers no command; afterwards it does again."""
    board = _board(Fault("brownout", 0.0, 10.0, supply_mv=4000, reset_mv=4700))  # in reset from t=3.1 s
    while board.next_event_s() < 5:
        board.step()
    assert board.command(CommandSentence("RATE", "500").encode()) is None
    while board.next_event_s() <= 10:
        board.step()
    assert board.command(CommandSentence("RATE", "500").encode()) == AckSentence("RATE", "500").encode()
