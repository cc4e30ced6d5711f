"""Group a board's per-sensor CCTMP sentences into sampling ticks.

The board sends one CCTMP per sensor per period, back to back. A tick is complete
when every configured sensor has reported; it is cut short when a sensor repeats
(its next period began: a sensor fell silent), when a CCTIM announces the next
burst, or when ``timeout_ms`` passes after the tick's first sentence. Whatever a
cut-short tick holds is still sent: a missing sensor is visible by its absence,
never by holding back the others.

Every tick is stamped at least a millisecond after the previous one. A Pi that falls behind
reads several bursts in one go, and their first sentences arrive within the same millisecond;
InfluxDB keeps one point per series and time, so two readings of a sensor stamped alike would
be stored as one: the other one lost, though acknowledged. Only a wall clock that goes back
(stepped by NTP, or still unset) is left alone: what it says then is not nudged forward.
"""

from __future__ import annotations

from coldchain.sentences import TemperatureSentence
from coldchain.wire import PLAUSIBLE_MAX_C, PLAUSIBLE_MIN_C, Reading

__all__ = ["Tick", "TickAssembler"]


class Tick:
    """Readings of one burst, stamped when its first sentence arrived (or by the board)."""

    __slots__ = ("board_ts", "mono_ms", "readings", "wall_ms")

    def __init__(self, wall_ms: int, mono_ms: int, board_ts: int | None) -> None:
        self.wall_ms = wall_ms
        self.mono_ms = mono_ms
        self.board_ts = board_ts
        self.readings: dict[str, Reading] = {}


def reading_of(sentence: TemperatureSentence) -> Reading:
    """The wire reading for a sentence: a value when OK, else value null with the fault.

    An ``OK`` value no probe can mean (outside the wire's plausible range) is a ``RANGE`` fault:
    sent as a value, the gateway would refuse the whole message, the other probes' readings too.
    """
    if sentence.status == "OK" and PLAUSIBLE_MIN_C <= sentence.celsius <= PLAUSIBLE_MAX_C:
        return Reading(sentence.sensor, round(sentence.celsius, 2))
    return Reading(sentence.sensor, None, "RANGE" if sentence.status == "OK" else sentence.status)


class TickAssembler:
    """Pure state machine: feed sentences with the time they arrived, get completed ticks."""

    def __init__(self, sensors: tuple[str, ...], timeout_ms: int) -> None:
        self.sensors = frozenset(sensors)
        self.timeout_ms = timeout_ms
        self._open: Tick | None = None
        self._board_ts: int | None = None
        self._last: Tick | None = None  # the previous tick, as stamped
        self._last_wall_ms = 0  # the wall clock as read for it, before any nudge

    def clock(self, epoch_ms: int) -> Tick | None:
        """A CCTIM arrived: close the open tick; the next one is stamped ``epoch_ms``."""
        done = self.flush()
        self._board_ts = epoch_ms
        return done

    def feed(self, sentence: TemperatureSentence, wall_ms: int, mono_ms: int) -> list[Tick]:
        """Account for one sentence of a configured sensor; return the ticks it completed."""
        done: list[Tick] = []
        if self._open is not None and sentence.sensor in self._open.readings:
            done.append(self._open)
            self._open = None
        if self._open is None:
            self._open = self._stamped(wall_ms, mono_ms)
            self._board_ts = None
        self._open.readings[sentence.sensor] = reading_of(sentence)
        if self._open.readings.keys() >= self.sensors:
            done.append(self._open)
            self._open = None
        return done

    def _stamped(self, wall_ms: int, mono_ms: int) -> Tick:
        """A new tick stamped after the previous one (see the module's docstring)."""
        last, went_back = self._last, wall_ms < self._last_wall_ms
        self._last_wall_ms = wall_ms
        if last is not None:
            # the monotonic stamp dates a held reading once the clock is set: it must differ too
            mono_ms = max(mono_ms, last.mono_ms + 1)
            if not went_back:
                wall_ms = max(wall_ms, last.wall_ms + 1)
        self._last = Tick(wall_ms, mono_ms, self._board_ts)
        return self._last

    def expire(self, mono_ms: int) -> Tick | None:
        """Close the open tick if its time is up."""
        if self._open is not None and mono_ms - self._open.mono_ms >= self.timeout_ms:
            return self.flush()
        return None

    def flush(self) -> Tick | None:
        """Close the open tick now (link lost, shutting down)."""
        done, self._open = self._open, None
        return done
