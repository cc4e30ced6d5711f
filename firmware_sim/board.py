"""The probe board's firmware as a pure state machine: scheduled ticks in, sentence bytes out.

No clocks and no I/O: the caller asks for the next event's simulated time,
waits until then (or not, when running faster than real time) and calls
``step()``. The same seed and the same options give the same bytes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    ClockSentence,
    CommandSentence,
    HeartbeatSentence,
    LidSentence,
    TemperatureSentence,
    TiltSentence,
    parse_sentence,
)
from firmware_sim.faults import NOMINAL_SUPPLY_MV, Fault
from firmware_sim.sensor import Probe, ProbeReading

__all__ = ["FIRMWARE_VERSION", "MAX_PERIOD_MS", "MIN_PERIOD_MS", "Board", "BoardSpec", "emit_until"]

FIRMWARE_VERSION = "1.0.0-sim"
MIN_PERIOD_MS = 10
MAX_PERIOD_MS = 86_400_000

TemperatureSource = Callable[[float], float]  # simulated seconds -> true °C


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """Everything that decides the board's output apart from the temperature sources."""

    probes: Sequence[Probe]
    period_s: float = 1.0
    heartbeat_s: float = 5.0  # 0: the board sends no heartbeat
    clock: bool = False  # send $CCTIM before each tick's burst
    epoch_ms: int = 0  # the board clock at boot (t = 0)
    faults: Sequence[Fault] = ()
    lid_changes: Sequence[tuple[float, bool]] | None = None  # (t, open); None: no lid switch on the board
    # (t, tilt_deg, shock_g): the shipper turned to tilt_deg at t with that jolt; None: no accelerometer
    orientation: Sequence[tuple[float, float, float]] | None = None


class Board:
    """Emits lid changes, a tick burst every period and a heartbeat every ``heartbeat_s``, in simulated time."""

    def __init__(
        self,
        spec: BoardSpec,
        payload: TemperatureSource,
        rng: random.Random,
        ambient: TemperatureSource | None = None,
    ) -> None:
        self.spec = spec
        self._sources = {"payload": payload, "ambient": ambient or payload}
        self._rng = rng
        self.period_s = spec.period_s
        self._tick_base = 0.0  # ticks fall at base + k * period: no drift from adding floats
        self._tick_k = 0
        self._heartbeat_k = 0
        self._boot_s = 0.0
        self._in_reset = False
        self._last: dict[str, ProbeReading] = {}
        lid = sorted(spec.lid_changes or ())
        # a board with a lid switch reports its state once after boot
        self._lid = [(0.0, any(open_ for t, open_ in lid if t <= 0))] if spec.lid_changes is not None else []
        self._lid += [(t, open_) for t, open_ in lid if t > 0]
        self._orientation = sorted(spec.orientation or ())
        self._tilt_deg = 0.0  # upright until the first change
        self._last_tilt_s = -math.inf  # shocks since the previous CCTLT go into the next one
        self._brownouts = [f for f in spec.faults if f.kind == "brownout"]
        self._disconnects = [f for f in spec.faults if f.kind == "disconnect"]

    @property
    def next_tick_s(self) -> float:
        """Simulated time of the next sample burst."""
        return self._tick_base + self._tick_k * self.period_s

    @property
    def next_heartbeat_s(self) -> float:
        """Simulated time of the next heartbeat (infinite when heartbeats are off)."""
        return self._heartbeat_k * self.spec.heartbeat_s if self.spec.heartbeat_s > 0 else math.inf

    def next_event_s(self) -> float:
        """Simulated time of the next output."""
        lid = self._lid[0][0] if self._lid else math.inf
        return min(self.next_tick_s, self.next_heartbeat_s, lid)

    def link_up(self, t_s: float) -> bool:
        """False while a ``disconnect`` fault has the serial device gone."""
        return not any(f.active(t_s) for f in self._disconnects)

    def supply_mv(self, t_s: float) -> int:
        """The board's supply voltage at ``t_s``."""
        return min((f.supply_at(t_s) for f in self._brownouts), default=NOMINAL_SUPPLY_MV)

    def step(self) -> tuple[float, list[bytes]]:
        """Emit everything due at the next event time.

        In this order: the clock (when the board has one and there is a lid change
        or a tick), lid changes, the tick's burst of samples, the heartbeat.
        """
        now = self.next_event_s()
        out: list[bytes] = []
        powered = self._power(now)
        lid: list[bytes] = []
        while self._lid and self._lid[0][0] <= now:
            _, open_ = self._lid.pop(0)
            lid.append(LidSentence("OPEN" if open_ else "CLOSED").encode())
        tick = self.next_tick_s <= now
        if powered and self.spec.clock and (tick or lid):  # the clock stamps the lid change and the samples
            out.append(ClockSentence(self.spec.epoch_ms + round(now * 1000)).encode())
        if powered:
            out += lid
        if tick:
            if powered:
                out += self._tick(now)
            self._tick_k += 1
        if self.next_heartbeat_s <= now:
            if powered and not self._active("heartbeat_stop", now):
                uptime = int(now - self._boot_s)
                out.append(HeartbeatSentence(uptime, FIRMWARE_VERSION, self.supply_mv(now)).encode())
            self._heartbeat_k += 1
        return now, [self._garble(line) if self._corrupting(now) else line for line in out]

    def _power(self, now: float) -> bool:
        """Track brown-out resets: silent below the reset voltage, rebooted (uptime 0) once it recovers."""
        low = any(f.active(now) and f.supply_at(now) < f.reset_mv for f in self._brownouts)
        if low:
            self._in_reset = True
        elif self._in_reset:
            self._in_reset = False
            self._boot_s = now
        return not low

    def _active(self, kind: str, now: float) -> bool:
        return any(f.kind == kind and f.active(now) for f in self.spec.faults)

    def _corrupting(self, now: float) -> bool:
        return self._active("corrupt", now)

    def _garble(self, line: bytes) -> bytes:
        """With the corrupt fault's probability, flip one bit of one body byte: the checksum stops matching."""
        probability = max(f.probability for f in self.spec.faults if f.kind == "corrupt")
        if self._rng.random() >= probability:
            return line
        star = line.rindex(b"*")
        position = self._rng.randrange(1, star)
        return line[:position] + bytes([line[position] ^ 0x01]) + line[position + 1 :]

    def _tick(self, now: float) -> list[bytes]:
        out = []
        for probe in self.spec.probes:
            reading = self._read(probe, now)
            out.append(TemperatureSentence(reading.sensor, reading.celsius, reading.status).encode())
        if self.spec.orientation is not None:
            out.append(self._tilt(now).encode())
        return out

    def _tilt(self, now: float) -> TiltSentence:
        """The accelerometer after a burst: the angle now, the hardest jolt since the previous burst."""
        shock = 0.0
        for t, tilt_deg, shock_g in self._orientation:
            if self._last_tilt_s < t <= now:
                shock = max(shock, shock_g)
            if t <= now:
                self._tilt_deg = tilt_deg
        self._last_tilt_s = now
        return TiltSentence(self._tilt_deg, shock)

    def _read(self, probe: Probe, now: float) -> ProbeReading:
        faults = [f for f in self.spec.faults if f.applies_to(probe.name) and f.active(now)]
        true_c = self._sources[probe.location](now)
        true_c += sum(f.magnitude_c * (now - f.start_s) / 3600.0 for f in faults if f.kind == "drift")
        reading = probe.read(true_c, self._rng)  # always one draw, so faults do not shift later noise
        kinds = {f.kind for f in faults}
        if "stuck" in kinds and probe.name in self._last:
            reading = self._last[probe.name]
        for spike in (f for f in faults if f.kind == "spikes"):
            if self._rng.random() < spike.probability and reading.status == "OK":
                sign = 1.0 if self._rng.random() < 0.5 else -1.0
                return probe.clamp(reading.celsius + sign * spike.magnitude_c)
        if "open" in kinds:
            return ProbeReading(probe.name, 0.0, "OPEN")
        if "short" in kinds:
            return ProbeReading(probe.name, 0.0, "SHORT")
        self._last[probe.name] = reading
        return reading

    def command(self, line: bytes) -> bytes | None:
        """Handle one line from the agent; return the reply, or None for a line that is not a command.

        ``RATE,<ms>`` sets the sample period from the last tick on; a command the
        board cannot carry out is answered with the argument ``ERR``.
        """
        if self._in_reset:  # browned out: nobody home to answer
            return None
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


def emit_until(board: Board, end_s: float) -> Iterator[tuple[float, bytes]]:
    """Every line the board sends before simulated second ``end_s``, with its time: a run without a pty."""
    while board.next_event_s() < end_s:
        now, lines = board.step()
        for line in lines:
            yield now, line
