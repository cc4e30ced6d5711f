"""Helpers for the simulator's tests: run ``coldchain sim`` as a process and read its port."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import serial
from edge_helpers import agent_config

from cli.services import Mosquitto
from coldchain.errors import SentenceError
from coldchain.sentences import Sentence, parse_sentence

BOARD_CLOCK = 'time_source = "board"\ntick_timeout_s = 0.2\n'


def sim_agent_config(
    directory: Path,
    crate: str,
    broker: Mosquitto,
    device: str,
    sensors: Iterable[str] = ("probe1",),
    profile: str = "cryo",
    probe_extra: str = BOARD_CLOCK,
) -> Path:
    """``directory``/agent.toml: an agent reading a simulated board on ``device`` (on the board's clock unless
    ``probe_extra`` says otherwise), reconnecting quickly to ``broker``."""
    names = ", ".join(f'"{sensor}"' for sensor in sensors)
    probes = f'[[probes]]\ndriver = "serial"\nport = "{device}"\nsensors = [{names}]\n{probe_extra}'
    return agent_config(directory, crate, broker, probes=probes, profile=profile, local_alarms=False)


@dataclass
class SimProcess:
    """A running simulator and the device path it printed."""

    process: subprocess.Popen[str]
    device: str
    bad_lines: list[bytes] = field(default_factory=list)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM the simulator and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@contextlib.contextmanager
def running_sim(*args: str) -> Iterator[SimProcess]:
    """Start ``python -m firmware_sim ARGS``, wait for its ``device`` line, stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("device /"), (
            f"first line was {first!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        )
        yield SimProcess(process, first.split(" ", 1)[1].strip())
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_sentences(
    port: serial.Serial, done: Callable[[list[Sentence]], bool], timeout: float = 5.0
) -> tuple[list[Sentence], list[bytes]]:
    """Read and decode lines until ``done(sentences)`` or the timeout; return sentences and bad lines."""
    sentences: list[Sentence] = []
    bad: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(sentences):
        line = port.readline()
        if not line:
            continue
        try:
            sentences.append(parse_sentence(line))
        except SentenceError:
            bad.append(line)
    return sentences, bad
