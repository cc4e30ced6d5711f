"""What the agent's threads hand to its loop: probe samples, probe notices and MQTT news.

Producers (probe threads, paho's callbacks) only build these and enqueue them;
the agent loop is the one place that acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coldchain.wire import Reading

__all__ = ["Connected", "Disconnected", "Event", "Notice", "PowerOn", "Published", "Sample", "StorageAcked"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampling tick of one probe driver: the readings taken together.

    ``ts`` is epoch ms from the wall clock (or the board's clock); ``mono_ms`` the
    monotonic clock at the same moment, used to repair ``ts`` when the wall clock was unset.
    ``powered_on`` is when the probe board was switched on, in the clock of ``ts``, when
    known; ``power_on_by`` (monotonic ms) says the probe ``probe`` will tell it by then
    (a ``PowerOn``): the sample's publication waits for that, at most until then.
    """

    ts: int
    mono_ms: int
    readings: tuple[Reading, ...]
    board_clock: bool = False
    probe: str = ""
    powered_on: int | None = None
    power_on_by: int | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a probe noticed that people should hear about (lid, missing heartbeat...)."""

    event: str
    ts: int
    mono_ms: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PowerOn:
    """A probe board's heartbeat told its uptime: it was switched on at monotonic ``mono_ms``
    (and at ``board_ms`` on its own clock, when it sends one)."""

    probe: str
    mono_ms: int
    board_ms: int | None = None

    def stamp(self, ts: int, mono_ms: int, board_clock: bool) -> int | None:
        """The switch-on time in the clock of a sample taken at ``ts`` / ``mono_ms`` (never after ``ts``).

        Through the monotonic clock for the Pi's time, so a sample stamped while the wall
        clock was unset gets a switch-on time that its later correction shifts along with it.
        """
        at = self.board_ms if board_clock else ts - (mono_ms - self.mono_ms)
        if at is None or at <= 0:
            return None
        return min(at, ts)


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted our connection."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection to the broker is gone (or could not be made)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Published:
    """The broker answered a QoS 1 publish; ``reason_code`` >= 0x80 means it refused it."""

    mid: int
    reason_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class StorageAcked:
    """The gateway says every seq up to ``stored_through`` is stored."""

    stored_through: int


Event = Sample | Notice | PowerOn | Connected | Disconnected | Published | StorageAcked
