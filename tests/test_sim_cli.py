"""``coldchain sim`` as a process on a real pseudo-terminal, read with pyserial like the agent does."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import serial
from sim_helpers import read_sentences, running_sim

from coldchain.excursions import ACTIVE, ThresholdTracker
from coldchain.profiles import parse_profiles
from coldchain.sentences import AckSentence, ClockSentence, CommandSentence, HeartbeatSentence, TemperatureSentence
from coldchain.settings import Table

PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles.toml"


def _temperatures(sentences: list[object]) -> list[TemperatureSentence]:
    return [s for s in sentences if isinstance(s, TemperatureSentence)]


def test_sim_prints_device_then_speaks_protocol_v1_for_each_sensor() -> None:
    """The first stdout line names a pty; it carries valid CCTMP for every sensor and CCHBT heartbeats."""
    with running_sim("--sensor", "inner", "--sensor", "outer", "--period", "0.1", "--heartbeat", "0.3") as sim:
        assert sim.device.startswith("/dev/pts/")
        with serial.Serial(sim.device, 115200, timeout=0.2) as port:
            sentences, bad = read_sentences(
                port, lambda got: sum(isinstance(s, HeartbeatSentence) for s in got) >= 2, timeout=5
            )
        assert sim.stop() == 0
    assert bad == []
    temps = _temperatures(sentences)
    assert {t.sensor for t in temps} == {"inner", "outer"}
    assert all(t.status == "OK" and -186.0 < t.celsius < -184.0 for t in temps)
    heartbeat = next(s for s in sentences if isinstance(s, HeartbeatSentence))
    assert (heartbeat.firmware_version, heartbeat.supply_mv) == ("1.0.0-sim", 5000)


def test_warming_trace_raises_the_cryo_critical_alarm_on_demand() -> None:
    """Warming at 1200 °C/min from -160 crosses cryo's -150 °C critical limit within a second."""
    cryo = parse_profiles(Table(tomllib.loads(PROFILES.read_text()), "profiles.toml"))["cryo"]
    critical = next(rule for rule in cryo.rules if rule.name == "critical_high")
    tracker = ThresholdTracker(critical, "probe1")
    args = ("--start", "-160", "--warm-rate", "1200", "--period", "0.05", "--clock", "--noise", "0")
    with running_sim(*args) as sim, serial.Serial(sim.device, 115200, timeout=0.2) as port:
        sentences, _ = read_sentences(port, lambda got: any(t.celsius > -148 for t in _temperatures(got)))
    clock = 0
    transitions = []
    for seq, sentence in enumerate(sentences):
        if isinstance(sentence, ClockSentence):
            clock = sentence.epoch_ms
        elif isinstance(sentence, TemperatureSentence):
            transitions.append(tracker.feed(sentence.celsius, clock, seq))
    raised = [t for t in transitions if t is not None]
    assert [t.state for t in raised] == [ACTIVE]
    assert raised[0].value_c > -150.0


def test_rate_command_is_acknowledged_and_changes_the_period() -> None:
    """$CCCMD,RATE,100 is answered with $CCACK,RATE,100 and the board clock then steps by 100 ms."""
    with running_sim("--period", "1", "--clock", "--heartbeat", "0") as sim:
        with serial.Serial(sim.device, 115200, timeout=0.2) as port:
            port.write(CommandSentence("RATE", "100").encode())
            sentences, _ = read_sentences(
                port, lambda got: sum(isinstance(s, ClockSentence) for s in got) >= 6, timeout=5
            )
        assert sim.stop() == 0
    assert AckSentence("RATE", "100") in sentences
    after_ack = sentences[sentences.index(AckSentence("RATE", "100")) :]
    clocks = [s.epoch_ms for s in after_ack if isinstance(s, ClockSentence)]
    assert len(clocks) >= 4
    assert {b - a for a, b in itertools.pairwise(clocks)} == {100}


def test_sigterm_ends_the_sim_cleanly_and_removes_the_device() -> None:
    """SIGTERM makes the sim exit 0 at once; its pty is gone afterwards."""
    with running_sim("--period", "10") as sim:
        time.sleep(0.1)
        started = time.monotonic()
        sim.process.send_signal(signal.SIGTERM)
        assert sim.process.wait(5) == 0
        assert time.monotonic() - started < 2
        assert not os.path.exists(sim.device)


def test_sigint_ends_the_sim_cleanly() -> None:
    """SIGINT (Ctrl-C) also ends the sim with status 0."""
    with running_sim("--period", "10") as sim:
        sim.process.send_signal(signal.SIGINT)
        assert sim.process.wait(5) == 0


def test_duration_ends_the_run_by_itself() -> None:
    """--duration 0.3 exits 0 after about 0.3 s without a signal."""
    started = time.monotonic()
    with running_sim("--duration", "0.3", "--period", "0.1") as sim:
        assert sim.process.wait(5) == 0
    assert time.monotonic() - started < 3


def test_link_option_keeps_a_symlink_to_the_device(tmp_path: Path) -> None:
    """With --link the printed path is the symlink, it resolves to the pty, and it is removed at exit."""
    link = tmp_path / "board0"
    with running_sim("--link", str(link), "--period", "0.1") as sim:
        assert sim.device == str(link)
        assert os.path.realpath(link).startswith("/dev/pts/")
        with serial.Serial(sim.device, 115200, timeout=0.2) as port:
            sentences, _ = read_sentences(port, lambda got: len(_temperatures(got)) >= 2)
        assert len(_temperatures(sentences)) >= 2
        assert sim.stop() == 0
    assert not link.is_symlink()


def test_bad_option_is_refused_with_a_clear_message() -> None:
    """--period 0 stops with status 2 and says what is wrong with which option."""
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "--period", "0"], check=False, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "--period" in result.stderr
    assert "must be greater than 0" in result.stderr
    assert result.stdout == ""
