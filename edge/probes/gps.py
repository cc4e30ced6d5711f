"""A GPS receiver on a serial port: NMEA 0183 (``edge.probes.nmea``) turned into crate events.

Opened with ``serial.serial_for_url`` like the probe board, so a USB or UART receiver,
a pty (the simulator, the tests) and ``loop://`` run the same code; reopened with a
capped backoff when it goes away. Receivers send a fix every second; the crate reports
its ``position`` when the fix is (re)gained and then every ``report_s``, and
``gps_no_fix`` once when the receiver says it has none (indoors, in an aircraft's hold):
the last position is never repeated as if it were current.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import serial

from edge.clock import Clock
from edge.events import Event, Notice
from edge.probes.gps_config import GpsConfig
from edge.probes.nmea import GpsUpdate, NmeaError, read_nmea

__all__ = ["GpsReceiver", "GpsTracker"]

log = logging.getLogger(__name__)

MAX_LINE = 256
REOPEN_MAX_S = 5.0


class GpsTracker:
    """The receiver's fix as a state; turns updates into ``position`` and ``gps_no_fix`` notices."""

    def __init__(self, probe: str, report_s: float) -> None:
        self.probe = probe
        self.report_ms = round(report_s * 1000)
        self.fix: bool | None = None  # None: not heard yet
        self.satellites: int | None = None
        self.speed_kmh: float | None = None
        self._reported_ms: int | None = None

    def feed(self, update: GpsUpdate, ts: int, mono_ms: int) -> list[Notice]:
        """The notices one update, heard at ``ts`` / ``mono_ms``, gives."""
        if update.position is None:
            # a count from before the loss would misstate it: only this sentence's own, if any
            self.satellites = update.satellites
            if self.fix is False:
                return []
            self.fix, self.speed_kmh = False, None
            return [Notice("gps_no_fix", ts, mono_ms, self._detail())]
        if update.satellites is not None:
            self.satellites = update.satellites
        if update.speed_kmh is not None:
            self.speed_kmh = update.speed_kmh
        regained = self.fix is not True
        self.fix = True
        # RMC carries the speed; reporting on it only keeps one event per epoch, whichever comes first
        if update.sentence != "RMC" and not regained:
            return []
        if not regained and self._reported_ms is not None and mono_ms - self._reported_ms < self.report_ms:
            return []
        self._reported_ms = mono_ms
        detail = self._detail()
        detail.update(lat=round(update.position.lat, 6), lon=round(update.position.lon, 6))
        if self.speed_kmh is not None:
            detail["speed_kmh"] = self.speed_kmh
        return [Notice("position", ts, mono_ms, detail)]

    def _detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"probe": self.probe}
        if self.satellites is not None:
            detail["satellites"] = self.satellites
        return detail


class GpsReceiver:
    """Reads one GPS receiver until stopped; bad lines are counted and logged, never fatal."""

    def __init__(self, config: GpsConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.name = config.port
        self.bad_lines = 0
        self.device: str | None = None  # the port while it is open
        self.tracker = GpsTracker(config.port, config.report_s)

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Read until ``stop`` is set, reopening the port whenever it goes away."""
        delay = 0.1
        while not stop.is_set():
            try:
                link = serial.serial_for_url(self.config.port, baudrate=self.config.baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as exc:
                log.warning("gps %s: cannot open (%s); retrying in %.1f s", self.name, exc, delay)
            else:
                delay = 0.1
                self.device = self.config.port
                log.info("gps %s: opened", self.name)
                try:
                    self._session(link, emit, stop)
                except (serial.SerialException, OSError) as exc:
                    log.error("gps %s: link lost (%s); will reopen", self.name, exc)
                finally:
                    self.device = None
                    link.close()
            stop.wait(delay)
            delay = min(delay * 2, REOPEN_MAX_S)

    def _session(self, link: serial.Serial, emit: Callable[[Event], None], stop: threading.Event) -> None:
        buffer = b""
        while not stop.is_set():
            chunk = link.read(max(1, link.in_waiting))
            if not chunk:
                continue
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self.line(line, emit)
            if len(buffer) > MAX_LINE:
                self._bad(f"{len(buffer)} bytes without a line end")
                buffer = b""

    def line(self, line: bytes, emit: Callable[[Event], None]) -> None:
        """Handle one line from the receiver."""
        if not line.strip():
            return
        try:
            update = read_nmea(line)
        except NmeaError as exc:
            self._bad(str(exc))
            return
        if update is not None:
            for notice in self.tracker.feed(update, self.clock.wall_ms(), self.clock.mono_ms()):
                emit(notice)

    def _bad(self, problem: str) -> None:
        self.bad_lines += 1
        # a receiver that is powered up mid-sentence sends one torn line: log the first, then every 100th
        if self.bad_lines == 1 or self.bad_lines % 100 == 0:
            log.warning("gps %s: bad line #%d ignored: %s", self.name, self.bad_lines, problem)
