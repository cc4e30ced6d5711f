"""The probe board's firmware as a pure state machine: scheduled ticks in, sentence bytes out.

No clocks and no I/O: the caller asks for the next event's simulated time,
waits until then (or not, when running faster than real time) and calls
``step()``. The same seed and the same options give the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    ClockSentence,
    CommandSentence,
    HeartbeatSentence,
    TemperatureSentence,
    parse_sentence,
)
from firmware_sim.sensor import Probe

__all__ = ["FIRMWARE_VERSION", "MAX_PERIOD_MS", "MIN_PERIOD_MS", "Board", "BoardSpec"]

FIRMWARE_VERSION = "1.0.0-sim"
MIN_PERIOD_MS = 10
MAX_PERIOD_MS = 86_400_000
NOMINAL_SUPPLY_MV = 5000

TemperatureSource = Callable[[float], float]  # simulated seconds -> true °C at the probe


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """Everything that decides the board's output apart from the temperature source."""

    probes: Sequence[Probe]
    period_s: float = 1.0
    heartbeat_s: float = 5.0  # 0: the board sends no heartbeat
    clock: bool = False  # send $CCTIM before each tick's burst
    epoch_ms: int = 0  # the board clock at boot (t = 0)


class Board:
    """Emits a tick burst every period and a heartbeat every ``heartbeat_s``, in simulated time."""

    def __init__(self, spec: BoardSpec, source: TemperatureSource, rng: random.Random) -> None:
        self.spec = spec
        self._source = source
        self._rng = rng
        self.period_s = spec.period_s
        self._tick_base = 0.0  # ticks fall at base + k * period: no drift from adding floats
        self._tick_k = 0
        self._heartbeat_k = 0

    @property
    def next_tick_s(self) -> float:
        """Simulated time of the next sample burst."""
        return self._tick_base + self._tick_k * self.period_s

    @property
    def next_heartbeat_s(self) -> float:
        """Simulated time of the next heartbeat (infinite when heartbeats are off)."""
        return self._heartbeat_k * self.spec.heartbeat_s if self.spec.heartbeat_s > 0 else float("inf")

    def next_event_s(self) -> float:
        """Simulated time of the next output."""
        return min(self.next_tick_s, self.next_heartbeat_s)

    def step(self) -> tuple[float, list[bytes]]:
        """Emit everything due at the next event time: the tick burst first, then a heartbeat."""
        now = self.next_event_s()
        out: list[bytes] = []
        if self.next_tick_s <= now:
            out += self._tick(now)
            self._tick_k += 1
        if self.next_heartbeat_s <= now:
            out.append(HeartbeatSentence(int(now), FIRMWARE_VERSION, NOMINAL_SUPPLY_MV).encode())
            self._heartbeat_k += 1
        return now, out

    def _tick(self, now: float) -> list[bytes]:
        out = []
        if self.spec.clock:
            out.append(ClockSentence(self.spec.epoch_ms + round(now * 1000)).encode())
        true_c = self._source(now)
        for probe in self.spec.probes:
            reading = probe.read(true_c, self._rng)
            out.append(TemperatureSentence(reading.sensor, reading.celsius, reading.status).encode())
        return out

    def command(self, line: bytes) -> bytes | None:
        """Handle one line from the agent; return the reply, or None for a line that is not a command.

        ``RATE,<ms>`` sets the sample period from the last tick on; a command the
        board cannot carry out is answered with the argument ``ERR``.
        """
        try:
            sentence = parse_sentence(line)
        except SentenceError:
            return None
        if not isinstance(sentence, CommandSentence):
            return None
        if sentence.name == "RATE":
            try:
                period_ms = int(sentence.argument)
            except ValueError:
                return AckSentence("RATE", "ERR").encode()
            if not MIN_PERIOD_MS <= period_ms <= MAX_PERIOD_MS:
                return AckSentence("RATE", "ERR").encode()
            if self._tick_k:  # the next tick follows the last one by the new period
                self._tick_base += (self._tick_k - 1) * self.period_s
                self._tick_k = 1
            self.period_s = period_ms / 1000.0
            return AckSentence("RATE", str(period_ms)).encode()
        return AckSentence(sentence.name, "ERR").encode()
