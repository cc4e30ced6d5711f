"""The board firmware as a pure state machine: schedule, clock, commands and determinism."""

from __future__ import annotations

import random

import pytest

from coldchain.sentences import (
    AckSentence,
    ClockSentence,
    CommandSentence,
    HeartbeatSentence,
    TemperatureSentence,
    parse_sentence,
)
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


def test_probe_quantises_to_its_resolution() -> None:
    """A DS18B20-like probe (0.0625 °C steps) only ever reports multiples of 0.0625."""
    probe = Probe("p", noise_c=0.3, resolution_c=0.0625)
    rng = random.Random(5)
    values = {probe.read(4.0, rng).celsius for _ in range(200)}
    assert len(values) > 5
    assert all((v / 0.0625) == pytest.approx(round(v / 0.0625), abs=1e-9) for v in values)


@pytest.mark.parametrize(("true_c", "expected"), [(-250.0, (-200.0, "RANGE")), (120.0, (80.0, "RANGE"))])
def test_probe_outside_its_range_reports_range_at_the_limit(true_c: float, expected: tuple[float, str]) -> None:
    """Beyond -200..80 °C the board reports RANGE with the value pinned at the limit."""
    reading = Probe("p", noise_c=0.0).read(true_c, random.Random(1))
    assert (reading.celsius, reading.status) == expected


def test_ambient_probe_reads_the_ambient_source() -> None:
    """A probe located outside the crate reads the ambient, the others the payload."""
    spec = BoardSpec([Probe("inside", noise_c=0.0), Probe("outside", noise_c=0.0, location="ambient")], 1.0, 0)
    board = Board(spec, lambda t: -80.0, random.Random(1), ambient=lambda t: 31.5)
    _, lines = board.step()
    assert [parse_sentence(line) for line in lines] == [
        TemperatureSentence("inside", -80.0),
        TemperatureSentence("outside", 31.5),
    ]
