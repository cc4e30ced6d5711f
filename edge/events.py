"""What the agent's threads hand to its loop: probe samples, probe notices and MQTT news.

Producers (probe threads, paho's callbacks) only build these and enqueue them;
the agent loop is the one place that acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coldchain.wire import Reading

__all__ = ["Connected", "Disconnected", "Event", "Notice", "Published", "Sample", "StorageAcked"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampling tick of one probe driver: the readings taken together.

    ``ts`` is epoch ms from the wall clock (or the board's clock); ``mono_ms`` the
    monotonic clock at the same moment, used to repair ``ts`` when the wall clock was unset.
    """

    ts: int
    mono_ms: int
    readings: tuple[Reading, ...]
    board_clock: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a probe noticed that people should hear about (lid, missing heartbeat...)."""

    event: str
    ts: int
    mono_ms: int
    detail: dict[str, Any] = field(default_factory=dict)


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


Event = Sample | Notice | Connected | Disconnected | Published | StorageAcked
