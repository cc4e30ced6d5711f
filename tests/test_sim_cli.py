"""``coldchain sim`` as a process on a real pseudo-terminal, read with pyserial like the agent does."""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import serial
from sim_helpers import read_sentences, running_sim

from coldchain.alarms.threshold import ThresholdTracker
from coldchain.alarms.transition import ACTIVE
from coldchain.errors import SentenceError
from coldchain.profiles import parse_profiles
from coldchain.sentences import (
    AckSentence,
    ClockSentence,
    CommandSentence,
    HeartbeatSentence,
    TemperatureSentence,
    parse_sentence,
)
from coldchain.settings.table import Table

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


SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "scenarios"


def _bursts(port: serial.Serial, timeout: float) -> dict[int, list[bytes]]:
    """Raw lines grouped by the CCTIM that precedes them, read until the sim closes the port."""
    bursts: dict[int, list[bytes]] = {}
    current: list[bytes] | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = port.readline()
        except serial.SerialException:
            break  # the sim ended and took its pty with it
        try:
            sentence = parse_sentence(line) if line else None
        except SentenceError:
            sentence = None  # a garbled line: keep its bytes, but it cannot start a burst
        if isinstance(sentence, ClockSentence):
            current = bursts.setdefault(sentence.epoch_ms, [])
        elif current is not None and line:
            current.append(line)
    return bursts


def test_speed_runs_days_of_scenario_in_seconds_with_consistent_board_clock() -> None:
    """cryo-ln2-out-day3 at --speed 200000: 4 simulated days in about 2 s, CCTIM stepping 5 min per tick."""
    epoch = 1_764_086_400_000
    scenario = str(SCENARIOS / "cryo-ln2-out-day3.toml")
    args = ("--scenario", scenario, "--period", "300", "--speed", "200000", "--epoch-ms", str(epoch))
    started = time.monotonic()
    with running_sim(*args) as sim, serial.Serial(sim.device, 115200, timeout=0.5) as port:
        bursts = _bursts(port, timeout=20)
        assert sim.process.wait(10) == 0
    elapsed = time.monotonic() - started
    clocks = sorted(bursts)
    assert elapsed < 8
    assert {b - a for a, b in itertools.pairwise(clocks)} == {300_000}
    assert clocks[-1] == epoch + 4 * 86_400_000 - 300_000
    assert len(clocks) == 4 * 24 * 12  # the clock waited for the reader and drained at the end: no tick lost
    warm = [c for c in clocks if float(bursts[c][0].split(b",")[2]) > -150.0]
    assert 72 < (warm[0] - epoch) / 3_600_000 < 80  # critical on day 3, in simulated hours


def test_same_seed_gives_byte_identical_sentences_over_the_pty() -> None:
    """Two runs with the same --seed and --epoch-ms send the same bytes for every tick both readers saw."""
    # the first 190 s of board-faults: spikes, a lid opening and garbled lines, before the unplugging at 200 s
    args = ("--scenario", str(SCENARIOS / "board-faults.toml"), "--speed", "400", "--duration", "190")
    runs = []
    for _ in range(2):
        with running_sim(*args, "--seed", "11", "--epoch-ms", "1764086400000") as sim:
            with serial.Serial(sim.device, 115200, timeout=0.5) as port:
                runs.append(_bursts(port, timeout=10))
            assert sim.process.wait(10) == 0
    assert runs[0] == runs[1]
    assert len(runs[0]) > 170  # every tick but those whose CCTIM line was garbled on purpose
    assert any(b"$CCLID,OPEN" in line for burst in runs[0].values() for line in burst)


def test_disconnect_fault_recreates_the_device_and_the_link_follows(tmp_path: Path) -> None:
    """During a disconnect the reader loses the port; afterwards the --link path opens the new pty."""
    scenario = tmp_path / "unplug.toml"
    scenario.write_text(
        'name = "unplug"\nprofile = "cryo"\nduration = "60s"\n'
        '[board]\nperiod = "0.1s"\nheartbeat = "1s"\n'
        '[shipper]\nkind = "ln2_dry_shipper"\n'
        '[[probes]]\nname = "probe1"\n'
        '[[faults]]\nkind = "disconnect"\nat = "1s"\nduration = "1s"\n'
    )
    link = tmp_path / "board"
    with running_sim("--scenario", str(scenario), "--link", str(link)) as sim:
        lost = False
        with serial.Serial(str(link), 115200, timeout=0.2) as port:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not lost:
                try:
                    port.readline()
                except serial.SerialException:
                    lost = True
        assert lost
        stdout = sim.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], 5)
        assert ready
        assert stdout.readline() == f"device {link}\n"  # the board is back, announced again
        with serial.Serial(str(link), 115200, timeout=0.2) as port:
            sentences, _ = read_sentences(port, lambda got: len(_temperatures(got)) >= 3)
        assert len(_temperatures(sentences)) >= 3
        assert sim.stop() == 0


def test_bad_scenario_file_stops_with_one_line_naming_file_and_key(tmp_path: Path) -> None:
    """A scenario with a bad value stops the sim with status 2 and a line naming file, key and problem."""
    scenario = tmp_path / "broken.toml"
    scenario.write_text('name = "b"\nprofile = "cryo"\nduration = "1d"\n[shipper]\nkind = "fridge"\n')
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "--scenario", str(scenario)],
        check=False,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert f"{scenario}: shipper.kind: 'fridge' is not one of" in result.stderr
    assert result.stdout == ""


def test_trace_options_cannot_be_mixed_with_a_scenario() -> None:
    """--start with --scenario is refused: the scenario decides the temperatures."""
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "--scenario", str(SCENARIOS / "cryo-tipped.toml"), "--start", "-80"],
        check=False,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert "--start cannot be combined with --scenario" in result.stderr
