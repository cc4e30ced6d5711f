"""What the gateway refused and why, published on ``coldchain/v1/rejected``.

Built in one place for every refusal (a bad delivery, a refused staff ack, a point InfluxDB
refused for good), read by whoever waits for the answer to its own staff ack (``request``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.topics import valid_identifier
from coldchain.wire.common import WIRE_VERSION, json_object

__all__ = ["MAX_DETAIL_CHARS", "MAX_TOPIC_CHARS", "Rejected", "decode_rejected", "request_of"]

MAX_DETAIL_CHARS: Final = 500
MAX_TOPIC_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Rejected:
    """One refusal: ``reason`` (a stable label), ``detail`` (what exactly), and what was refused."""

    reason: str
    detail: str
    ts: int  # when the gateway refused it, UTC epoch milliseconds
    excerpt: str  # the start of what was refused, bounded by the gateway
    topic: str | None = None  # the refused delivery's topic; None for a point InfluxDB refused
    crate: str | None = None  # when known
    request: str | None = None  # a refused staff ack's own id, when it carried one

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": WIRE_VERSION, "reason": self.reason, "detail": self.detail[:MAX_DETAIL_CHARS]}
        if self.topic is not None:
            body["topic"] = self.topic[:MAX_TOPIC_CHARS]
        body["ts"] = self.ts
        if self.crate is not None:
            body["crate"] = self.crate
        if self.request is not None:
            body["request"] = self.request  # the sender of a staff ack can tell its own refusal
        body["excerpt"] = self.excerpt
        return body


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def decode_rejected(payload: bytes) -> Rejected:
    """A refusal as its readers take it: only a JSON object is required, any other field may be absent or odd.

    Missing or mistyped text fields read as "" (``topic``, ``crate``, ``request``: None), a missing
    ``ts`` as 0: a reader waiting for its own ``request`` needs only that and the reason. WireFormatError
    (from ``json_object``) for anything that is not a JSON object.
    """
    body = json_object(payload)
    ts = body.get("ts")
    topic, crate, request = body.get("topic"), body.get("crate"), body.get("request")
    return Rejected(
        _text(body.get("reason")),
        _text(body.get("detail")),
        ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
        _text(body.get("excerpt")),
        topic if isinstance(topic, str) else None,
        crate if isinstance(crate, str) else None,
        request if isinstance(request, str) else None,
    )


def request_of(payload: bytes) -> str | None:
    """The valid ``request`` id a staff ack's payload carries, whatever else is wrong with it (never raises)."""
    try:
        body = json_object(payload)
    except WireFormatError:
        return None
    request = body.get("request")
    return request if isinstance(request, str) and valid_identifier(request) else None
