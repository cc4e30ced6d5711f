"""A crate's retained online/offline status as the board and ``coldchain alerts`` read it.

The agent retains ``{"v":1,"crate":…,"state":"online"|"offline","ts":…}`` on
``coldchain/v1/crates/{crate}/status`` (its last will says ``offline``). The decoder is
total: any topic and any bytes give a StatusView or a WireFormatError naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, STATUS, parse_topic, valid_identifier
from coldchain.wire import json_object

__all__ = ["MAX_STATUS_BYTES", "STATUS_STATES", "StatusView", "decode_status"]

STATUS_STATES: Final = ("online", "offline")
MAX_STATUS_BYTES: Final = 4096  # the agent's status is under 100 bytes
_MAX_EPOCH_MS: Final = 2**53  # exclusive: the wire's bound on epoch milliseconds
_PREFIX: Final = f"{ROOT}/crates/"


@dataclass(frozen=True, slots=True)
class StatusView:
    """A crate's retained online/offline state."""

    crate: str
    state: str
    ts: int  # UTC epoch ms; 0 when the message does not say


def _crate(topic: str) -> str:
    route = parse_topic(topic)
    if route.kind != STATUS or not valid_identifier(route.crate):
        raise WireFormatError("topic", f"{topic[:200]!r} is not {_PREFIX}{{crate}}/status with a valid crate id")
    return route.crate


def decode_status(topic: str, payload: bytes) -> StatusView:
    """The status retained on ``topic``: it must name the topic's crate and say online or offline.

    ``ts`` (epoch milliseconds below 2^53) defaults to 0 when missing.
    """
    crate = _crate(topic)
    body = json_object(payload, MAX_STATUS_BYTES)
    named = body.get("crate")
    if named != crate:
        shown = repr(named)[:80] if isinstance(named, str) else f"a {type(named).__name__}"
        raise WireFormatError("topic_mismatch", f"payload crate {shown} != topic crate {crate!r}")
    state = body.get("state")
    if state not in STATUS_STATES:
        shown = repr(state)[:80] if isinstance(state, str) else f"a {type(state).__name__}"
        raise WireFormatError("schema", f"state {shown} is not online or offline")
    ts = body.get("ts", 0)
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < _MAX_EPOCH_MS:
        raise WireFormatError("type", "'ts' must be epoch milliseconds (an integer in 0..2^53-1)")
    return StatusView(crate, str(state), ts)
