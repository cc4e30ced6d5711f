"""Probes the agent reads on its own clock (DS18B20, ADC), all together once per sample period."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from coldchain.wire import Reading
from edge.clock import Clock
from edge.events import Event, Sample

__all__ = ["PolledProbes", "Sensor"]

log = logging.getLogger(__name__)


class Sensor(Protocol):
    """A driver read on demand; returns one reading (or fault reading) per sensor it owns."""

    def read(self) -> list[Reading]: ...


class PolledProbes:
    """Reads every polled driver each ``period_s`` and emits them as one Sample."""

    def __init__(self, drivers: list[Sensor], period_s: float, clock: Clock) -> None:
        self.drivers = drivers
        self.period_s = period_s
        self.clock = clock

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Sample until ``stop`` is set; the period is kept from the monotonic clock, without drift."""
        period_ms = int(self.period_s * 1000)
        due = self.clock.mono_ms()
        while not stop.is_set():
            wall, mono = self.clock.wall_ms(), self.clock.mono_ms()
            readings: list[Reading] = []
            for driver in self.drivers:
                readings.extend(driver.read())
            emit(Sample(wall, mono, tuple(sorted(readings, key=lambda r: r.sensor))))
            due += period_ms
            stop.wait(max(0.0, (due - self.clock.mono_ms()) / 1000))
