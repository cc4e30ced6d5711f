"""The board firmware as a pure state machine: schedule, clock, commands and determinism."""

from __future__ import annotations

import random

import pytest

from coldchain.sentences import AckSentence, ClockSentence, CommandSentence, HeartbeatSentence, parse_sentence
from firmware_sim.board import Board, BoardSpec
from firmware_sim.model import Ramp
from firmware_sim.sensor import Probe


def _board(seed: int | None = 7, **spec: object) -> Board:
    options: dict[str, object] = {"probes": [Probe("p1"), Probe("p2")], "period_s": 1.0, "heartbeat_s": 5.0}
    options.update(spec)
    return Board(BoardSpec(**options), Ramp(-185.0, 1.0).temperature, random.Random(seed))  # type: ignore[arg-type]


def _run(board: Board, steps: int) -> bytes:
    return b"".join(line for _ in range(steps) for line in board.step()[1])


def test_same_seed_gives_byte_identical_stream() -> None:
    """Two boards with the same seed and options emit exactly the same bytes."""
    assert _run(_board(42, clock=True, epoch_ms=1_764_086_400_000), 500) == _run(
        _board(42, clock=True, epoch_ms=1_764_086_400_000), 500
    )


def test_different_seed_gives_different_noise() -> None:
    """Another seed changes the noise."""
    assert _run(_board(1), 50) != _run(_board(2), 50)


def test_heartbeat_follows_the_tick_burst_at_the_same_instant() -> None:
    """At t=0 the board sends CCTIM, one CCTMP per probe, then CCHBT with uptime 0."""
    now, lines = _board(clock=True, epoch_ms=1_000_000).step()
    kinds = [line[1:6] for line in lines]
    assert now == 0.0
    assert kinds == [b"CCTIM", b"CCTMP", b"CCTMP", b"CCHBT"]
    assert parse_sentence(lines[0]) == ClockSentence(1_000_000)
    assert parse_sentence(lines[-1]) == HeartbeatSentence(0, "1.0.0-sim", 5000)


def test_clock_advances_with_simulated_time_without_drift() -> None:
    """After 10,000 ticks of 0.1 s the board clock reads exactly epoch + 1,000,000 ms."""
    board = _board(clock=True, epoch_ms=5_000, period_s=0.1, heartbeat_s=0)
    for _ in range(10_000):
        board.step()
    now, lines = board.step()
    assert now == pytest.approx(1000.0)
    assert parse_sentence(lines[0]) == ClockSentence(5_000 + 1_000_000)


def test_rate_command_applies_from_the_last_tick() -> None:
    """RATE,250 after ticks at 0 and 1 s puts the next tick at 1.25 s."""
    board = _board(heartbeat_s=0)
    board.step()
    board.step()
    assert board.command(CommandSentence("RATE", "250").encode()) == AckSentence("RATE", "250").encode()
    assert board.next_event_s() == pytest.approx(1.25)


@pytest.mark.parametrize(
    "command",
    [CommandSentence("RATE", "fast"), CommandSentence("RATE", "0"), CommandSentence("RATE", "999999999999")],
)
def test_impossible_rate_is_refused_with_err(command: CommandSentence) -> None:
    """A RATE the board cannot do is answered ERR and leaves the period alone."""
    board = _board()
    assert board.command(command.encode()) == AckSentence("RATE", "ERR").encode()
    assert board.period_s == 1.0


def test_unknown_command_is_answered_err_and_garbage_ignored() -> None:
    """An unknown command gets ERR; a line with a bad checksum or a non-command gets no answer."""
    board = _board()
    assert board.command(CommandSentence("REBOOT", "1").encode()) == AckSentence("REBOOT", "ERR").encode()
    assert board.command(b"$CCCMD,RATE,100*00\r\n") is None
    assert board.command(HeartbeatSentence(1, "x", 1).encode()) is None
