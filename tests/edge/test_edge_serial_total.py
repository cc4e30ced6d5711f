"""The probe link is total on both ends: any bytes give a sentence or SentenceError, the agent's reader
survives any line, the simulated board handles or refuses any command line."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from edge_helpers import Listen, PtyBoard, RunAgent, agent_config, wait_until
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytest_mock import MockerFixture

from cli.services import Mosquitto
from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    CommandSentence,
    HeartbeatSentence,
    Sentence,
    TemperatureSentence,
    frame,
    parse_sentence,
)
from edge.clock import Clock
from edge.config import SerialProbeConfig
from edge.events import Event, Sample
from edge.probes.serial_board import SerialBoard
from edge.probes.ticks import reading_of
from firmware_sim.board import Board, BoardSpec
from firmware_sim.model import Ramp
from firmware_sim.sensor import Probe

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = ["CCTMP", "CCHBT", "CCCMD", "CCACK", "CCTIM", "CCLID", "CCXYZ", ""]
# fields as a confused or hostile board might send them: numbers of every shape, ids, control bytes
FIELDS = st.text(alphabet=string.printable.replace(",", "") + "\x00\x7f", max_size=12) | st.sampled_from(
    ["-5", "1_000", " 7", "+3", "nan", "inf", "1e400", "9" * 40, "probe1", "-probe", "OK", "OPEN", "RATE", "ERR"]
)


@st.composite
def framed(draw: st.DrawFn) -> bytes:
    """A sentence with a correct checksum around any fields: it gets past the framing to the field checks."""
    fields = draw(st.lists(FIELDS, max_size=5))
    return frame(",".join([draw(st.sampled_from(TYPES)), *fields]))


def _sentence_or_error(line: bytes) -> Sentence | None:
    try:
        return parse_sentence(line)
    except SentenceError:
        return None


@FAST
@given(line=st.binary(max_size=120) | framed())
@example(line=frame("CCHBT,-5,1.0,-1"))
@example(line=frame("CCTMP,-probe,1.0,OK"))
@example(line=b"$\xff*00\r\n")
def test_any_bytes_give_a_sentence_or_a_sentence_error(line: bytes) -> None:
    """parse_sentence of any bytes returns a sentence or raises SentenceError, nothing else."""
    sentence = _sentence_or_error(line)
    if isinstance(sentence, HeartbeatSentence):
        assert sentence.uptime_s >= 0
        assert sentence.supply_mv >= 0


def _reader() -> tuple[SerialBoard, list[Event]]:
    clock = Clock(wall_ms=lambda: 1_795_000_000_000, mono_ms=lambda: 1_000)
    board = SerialBoard(SerialProbeConfig(sensors=("probe1", "probe2"), port="loop://"), clock)
    return board, []


@FAST
@given(lines=st.lists(st.binary(max_size=90) | framed(), max_size=8))
@example(lines=[frame("CCHBT,99999999999999999999999999999,x,1"), TemperatureSentence("probe1", -170.0).encode()])
def test_agent_reader_takes_any_line_and_still_reads_the_good_ones(lines: list[bytes]) -> None:
    """The agent's reader handles any lines without an exception, and a good burst after them is still read."""
    board, events = _reader()
    for line in lines:
        board._line(line, events.append)
    board._line(TemperatureSentence("probe1", -170.0).encode(), events.append)
    board._line(TemperatureSentence("probe1", -171.0).encode(), events.append)  # repeats: the first tick closes
    samples = [e for e in events if isinstance(e, Sample)]
    assert any(r.value_c == -170.0 for s in samples for r in s.readings)


def test_reading_no_probe_can_mean_is_a_range_fault() -> None:
    """An OK value outside the wire's plausible range becomes a RANGE fault, not a message the gateway refuses."""
    assert reading_of(TemperatureSentence("probe1", 1e300)).fault == "RANGE"
    assert reading_of(TemperatureSentence("probe1", -273.0)).fault == "RANGE"
    assert reading_of(TemperatureSentence("probe1", -162.314)).value_c == -162.31


def _sim_board() -> Board:
    spec = BoardSpec(probes=[Probe("p1")], period_s=1.0, heartbeat_s=5.0)
    return Board(spec, Ramp(-185.0, 1.0).temperature, random.Random(7))


@FAST
@given(line=st.binary(max_size=120) | framed() | st.builds(lambda a: CommandSentence("RATE", a).encode(), FIELDS))
@example(line=CommandSentence("RATE", "9" * 60).encode())
@example(line=CommandSentence("RATE", "-5").encode())
def test_simulated_board_handles_or_refuses_any_command_line(line: bytes) -> None:
    """The simulator answers any line with a valid CCACK or nothing, and its sample period stays in range."""
    board = _sim_board()
    reply = board.command(line)
    if reply is not None:
        assert isinstance(parse_sentence(reply), AckSentence)
    assert 0.01 <= board.period_s <= 86_400


def test_agent_reader_survives_a_line_handler_failing_unexpectedly(mocker: MockerFixture) -> None:
    """A fault while handling one serial line is counted as a bad line; the next line is read."""
    board, events = _reader()
    mocker.patch.object(board, "_line", side_effect=[RuntimeError("fault"), None])
    board._line_isolated(b"$CCTMP,probe1,1.00,OK*00", events.append)
    board._line_isolated(b"$CCTMP,probe1,1.00,OK*00", events.append)
    assert board.bad_lines == 1


@pytest.mark.integration
def test_agent_reading_a_real_pty_survives_hostile_lines_and_publishes_the_next_tick(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, run_agent: RunAgent
) -> None:
    """Garbage, bad numbers and absurd heartbeats on the serial line: counted, and the next tick is published."""
    crate = f"{crate_prefix}-H"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    probes = f'[[probes]]\ndriver = "serial"\nport = "{board.device}"\nsensors = ["probe1"]\npower_on_wait_s = 0\n'
    run = run_agent(agent_config(tmp_path, crate, mosquitto, probes=probes), with_probes=True)
    wait_until(lambda: run.agent.probes[0].device == board.device, 10, "port opened")  # type: ignore[attr-defined]
    hostile = [
        b"\xff\xfe\x00garbage",
        b"$" + b"9" * 300,
        frame("CCHBT,-5,1.0,3300"),
        frame("CCTMP,probe1,1e400,OK"),
        frame("CCTMP,../etc,1.0,OK"),
        frame("CCTIM,99999999999999999999"),
    ]
    board.write(b"\r\n".join(hostile) + b"\r\n")
    board.tick({"probe1": 500.0})  # a value no probe can mean: a RANGE fault, not a refused message
    board.tick({"probe1": -170.0})
    got = wait_until(lambda: len(listener.telemetry()) >= 2 and listener.telemetry(), 10, "two ticks")
    assert [m["readings"] for m in got[:2]] == [
        [{"sensor": "probe1", "value_c": None, "fault": "RANGE"}],
        [{"sensor": "probe1", "value_c": -170.0}],
    ]
    assert run.agent.probes[0].bad_lines == len(hostile)  # type: ignore[attr-defined]
