"""The agent's two clocks, injected so tests and the simulator can drive time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SYSTEM_CLOCK", "Clock"]


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall-clock epoch milliseconds (may be wrong on a Pi without RTC) and monotonic milliseconds."""

    wall_ms: Callable[[], int]
    mono_ms: Callable[[], int]


SYSTEM_CLOCK = Clock(lambda: time.time_ns() // 1_000_000, lambda: time.monotonic_ns() // 1_000_000)
