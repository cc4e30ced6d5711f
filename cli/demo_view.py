"""``coldchain demo``'s terminal view: one line per crate, refreshed in place, and what happened.

Fed with the broker's messages (telemetry, crate status, retained alarms) through
the core's total decoders: a message no decoder accepts is counted and left out,
whatever its bytes. On a terminal the view redraws itself in place (plain ANSI
escapes); otherwise (a pipe, a log, the tests) it prints one line per event —
``ALARM``, ``CRATE`` and ``STORY`` lines — and a ``VIEW`` line per crate every
``plain_every_s`` seconds.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, STATUS, TELEMETRY, parse_topic
from coldchain.wire import AlarmView, decode_alarm, decode_status, decode_telemetry

__all__ = ["SUBSCRIPTIONS", "DemoView"]

SUBSCRIPTIONS = (f"{ROOT}/crates/+/telemetry", f"{ROOT}/crates/+/status", f"{ROOT}/alarms/#")
_RECENT = 9  # events shown under the crates on a terminal
_RED, _YELLOW, _GREEN, _DIM, _BOLD, _RESET = "\x1b[1;31m", "\x1b[33m", "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m"
_LATE = "LATE: over before its data arrived, needs review"

Segment = tuple[str, str]  # (text, ANSI style or "")


@dataclass
class _Crate:
    crate: str
    link: str = "starting"
    readings: dict[str, str] = field(default_factory=dict)
    first_reading_at: float | None = None
    alarms: dict[tuple[str, str], AlarmView] = field(default_factory=dict)  # (rule, sensor) -> latest state


def _celsius(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} °C"


def _clock(epoch_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms / 1000))


def _by(alarm: AlarmView) -> str:
    by = alarm.optional("acknowledged_by")
    return str(by) if by is not None else "?"


def describe_alarm(alarm: AlarmView) -> str:
    """One line about an alarm's new state, for people."""
    where = f"{alarm.crate} {alarm.rule} {alarm.sensor}"
    late = f" {_LATE}" if alarm.optional("late") is True else ""
    if alarm.state == "acknowledged":
        return f"{where}: acknowledged by {_by(alarm)}: {alarm.optional('note') or ''}".rstrip()
    if alarm.state == "cleared":
        return f"{where}: cleared ({_celsius(alarm.value_c)}){late}"
    return f"{where}: active ({alarm.severity}, {_celsius(alarm.value_c)} vs {_celsius(alarm.threshold_c)}){late}"


class DemoView:
    """What the crates are doing, as the broker tells it; thread-safe (paho's thread feeds it)."""

    def __init__(
        self,
        crates: tuple[str, ...],
        out: TextIO,
        tty: bool,
        header: list[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        plain_every_s: float = 10.0,
    ) -> None:
        self._crates = {crate: _Crate(crate) for crate in crates}
        self._out = out
        self._tty = tty
        self._header = header
        self._clock = clock
        self._plain_every_s = plain_every_s
        self._next_plain = clock() + plain_every_s
        self._recent: deque[tuple[str, str, str]] = deque(maxlen=_RECENT)  # (clock time, kind, text)
        self._seen: dict[str, tuple[object, ...]] = {}  # alarm topic -> what was last shown of it
        self._drawn = 0
        self._closed = False
        self._lock = threading.Lock()
        self.ignored = 0

    def handle(self, topic: str, payload: bytes) -> None:
        """Take one message from the broker; one no decoder accepts is counted and left out."""
        try:
            with self._lock:
                self._handle(topic, payload)
        except WireFormatError:
            self.ignored += 1

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic.startswith(f"{ROOT}/alarms/"):
            alarm = decode_alarm(topic, payload)
            if alarm is not None:
                self._alarm(alarm)
            return
        route = parse_topic(topic)
        crate = self._crates.get(route.own_crate or "")
        if crate is None:
            return
        if route.kind == STATUS:
            status = decode_status(topic, payload)
            if status.state != crate.link:
                crate.link = status.state
                self._event("CRATE", f"{crate.crate} {status.state}")
        elif route.kind == TELEMETRY:
            telemetry = decode_telemetry(payload, crate.crate)
            for reading in telemetry.readings:
                value = _celsius(reading.value_c) if reading.fault is None else reading.fault
                crate.readings[reading.sensor] = value
            if crate.first_reading_at is None:
                crate.first_reading_at = self._clock()

    def _alarm(self, alarm: AlarmView) -> None:
        crate = self._crates.get(alarm.crate)
        if crate is None:
            return
        crate.alarms[alarm.rule, alarm.sensor] = alarm
        shown = (alarm.alarm_id, alarm.state, alarm.optional("late"), alarm.optional("acknowledged_by"))
        if self._seen.get(alarm.topic) != shown:
            self._seen[alarm.topic] = shown
            self._event("ALARM", describe_alarm(alarm))

    def note(self, text: str) -> None:
        """A step of the demo's story."""
        with self._lock:
            self._event("STORY", text)

    def _event(self, kind: str, text: str) -> None:
        if self._closed:  # the demo is stopping: its own crates going offline are no news
            return
        if self._tty:
            self._recent.append((time.strftime("%H:%M:%S"), kind, text))
        else:
            print(f"{kind:<6} {text}", file=self._out, flush=True)

    def alarm(self, crate: str, rule: str, sensor: str) -> AlarmView | None:
        """The latest state of one alarm, as retained on the broker."""
        with self._lock:
            return self._crates[crate].alarms.get((rule, sensor))

    def first_reading_at(self, crate: str) -> float | None:
        """When (on the view's clock) the crate's first reading was seen."""
        with self._lock:
            return self._crates[crate].first_reading_at

    def refresh(self) -> None:
        """Redraw the terminal view, or print the plain crate lines when they are due."""
        with self._lock:
            if self._tty:
                self._draw()
            elif self._clock() >= self._next_plain:
                self._next_plain = self._clock() + self._plain_every_s
                for crate in self._crates.values():
                    text = "".join(text for text, _ in self._row(crate))
                    print(f"VIEW   {' '.join(text.split())}", file=self._out, flush=True)

    def close(self) -> None:
        """Leave the last frame on the terminal and give the cursor back."""
        with self._lock:
            if self._tty:
                self._draw()
                self._out.write("\x1b[?25h")
                self._out.flush()
                self._drawn = 0
            self._closed = True

    def _draw(self) -> None:
        width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
        lines = [[(text, _BOLD)] for text in self._header]
        lines += [[("", "")], [("CRATE    LINK      READING            STATE            ALARMS", _DIM)]]
        lines += [self._row(crate) for crate in self._crates.values()]
        lines += [[("", "")], [("What happened:", _BOLD)]]
        recent = [[(f"{at}  ", _DIM), (text, _KIND_STYLE.get(kind, ""))] for at, kind, text in self._recent]
        lines += recent + [[("", "")]] * (_RECENT - len(recent))
        up = f"\x1b[{self._drawn}F" if self._drawn else "\x1b[?25l"
        body = "".join(_fit(line, width) + "\x1b[K\n" for line in lines)
        self._out.write(up + body + "\x1b[J")
        self._out.flush()
        self._drawn = len(lines)

    def _row(self, crate: _Crate) -> list[Segment]:
        reading = ", ".join(f"{sensor} {value}" for sensor, value in sorted(crate.readings.items())) or "-"
        open_alarms = [a for a in crate.alarms.values() if a.is_open]
        late = [a for a in crate.alarms.values() if a.optional("late") is True]
        if crate.link == "offline":
            state = ("OFFLINE", _YELLOW)
        elif any(a.severity == "critical" for a in open_alarms):
            state = ("CRITICAL", _RED)
        elif open_alarms:
            state = ("WARNING", _YELLOW)
        else:
            state = ("ok", _GREEN) if crate.readings else ("starting", _DIM)
        if open_alarms and all(a.state == "acknowledged" for a in open_alarms):
            state = (f"{state[0]} (acked)", state[1])
        alarms = [
            f"{a.rule} since {_clock(a.started_ts)}" + (f", acked by {_by(a)}" if a.state == "acknowledged" else "")
            for a in sorted(open_alarms, key=lambda a: a.rule)
        ]
        alarms += [f"{a.rule} LATE, over: needs review" for a in late if not a.is_open]
        if crate.link == "offline":
            alarms.insert(0, "no network: the crate spools its readings")
        return [
            (f"{crate.crate:<9}", _BOLD),
            (f"{crate.link:<10}", _YELLOW if crate.link == "offline" else ""),
            (f"{reading:<19}", ""),
            (f"{state[0]:<17}", state[1]),
            ("; ".join(alarms) or "-", _RED if state[1] == _RED else ""),
        ]


_KIND_STYLE = {"ALARM": _YELLOW, "STORY": _BOLD, "CRATE": ""}


def _fit(segments: list[Segment], width: int) -> str:
    """The segments styled, cut to ``width`` visible characters."""
    out, left = [], width
    for text, style in segments:
        if left <= 0:
            break
        shown = text[:left]
        left -= len(shown)
        out.append(f"{style}{shown}{_RESET}" if style else shown)
    return "".join(out)
