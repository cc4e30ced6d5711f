"""Crate events, ``coldchain/v1/crates/{crate}/events``: ``{"v":1,"crate":…,"ts":…,"event":NAME,…}``.

An event names what happened (``lid_open``, ``gap``, ``gateway_silent``, ``excursion``…) and carries
its own detail fields beside the common ones. The gateway acts on the lid and ``gap`` events only; the
others are the crate's own record, accepted whatever detail they carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.wire.common import WIRE_VERSION, crate_object, describe
from coldchain.wire.telemetry import FUTURE_TOLERANCE_MS

__all__ = ["GAP", "LID_CLOSED", "LID_OPEN", "CrateEvent", "decode_event"]

LID_OPEN: Final = "lid_open"
LID_CLOSED: Final = "lid_closed"
GAP: Final = "gap"  # seqs ``first_seq``..``last_seq`` the crate dropped for good
_MAX_INT: Final = 2**63


@dataclass(frozen=True, slots=True)
class CrateEvent:
    """One event of one crate; ``detail`` holds the event's own fields (JSON values)."""

    crate: str
    ts: int  # UTC epoch milliseconds of what happened
    event: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> tuple[int, int]:
        """A ``gap`` event's first and last lost seq (decoded: integers, first <= last)."""
        return self.detail["first_seq"], self.detail["last_seq"]

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "ts": self.ts, "event": self.event, **self.detail}


def _integer(body: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < _MAX_INT:
        raise WireFormatError("schema", f"'{key}' must be an integer >= {minimum}, got {describe(value)}")
    return value


def decode_event(
    payload: bytes, topic_crate: str, now_ms: int | None = None, future_ms: int = FUTURE_TOLERANCE_MS
) -> CrateEvent:
    """Validate and decode an event of the crate ``topic_crate`` (the payload must name it).

    ``now_ms`` enables the check that ``ts`` (an epoch millisecond: it dates stored points) is not
    beyond ``future_ms`` in the future. A ``gap`` must carry ``first_seq`` <= ``last_seq``.
    """
    body = crate_object(payload, topic_crate)
    event = body.get("event")
    ts = _integer(body, "ts", 1)
    if now_ms is not None and ts > now_ms + future_ms:
        raise WireFormatError("future_ts", f"ts {ts} is {(ts - now_ms) / 1000:.0f} s in the future")
    if event == GAP:
        first, last = _integer(body, "first_seq"), _integer(body, "last_seq")
        if last < first:
            raise WireFormatError("schema", f"gap event with last_seq {last} < first_seq {first}")
    elif not isinstance(event, str):
        raise WireFormatError("schema", f"'event' must be a string, got {describe(event)}")
    detail = {key: value for key, value in body.items() if key not in ("v", "crate", "ts", "event")}
    return CrateEvent(topic_crate, ts, event, detail)
