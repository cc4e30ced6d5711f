"""The agent's clocks, injected so tests and the simulator can drive time.

A Pi has no real-time clock: until NTP answers it boots at 1970 (or at the last
time fake-hwclock saved). A wall clock earlier than this release was built
cannot be right; the monotonic clock still is, and corrects the samples later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["EARLIEST_PLAUSIBLE_MS", "Clock", "boot_id", "system_clock"]

EARLIEST_PLAUSIBLE_MS: Final = 1_793_491_200_000  # 2026-11-01T00:00Z, this release's build date


def boot_id() -> str:
    """The kernel's id of this boot: monotonic times from another boot cannot be compared."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall-clock epoch milliseconds (may be unset), monotonic milliseconds, and the boot they belong to."""

    wall_ms: Callable[[], int]
    mono_ms: Callable[[], int]
    boot: str = "unknown"

    def plausible(self, wall_ms: int) -> bool:
        """False for a wall-clock time before this release existed: the clock is unset."""
        return wall_ms >= EARLIEST_PLAUSIBLE_MS


def system_clock() -> Clock:
    """The Pi's own clocks."""
    return Clock(lambda: time.time_ns() // 1_000_000, lambda: time.monotonic_ns() // 1_000_000, boot_id())
