"""A crate's retained online/offline state, ``coldchain/v1/crates/{crate}/status``.

The agent retains ``{"v":1,"crate":…,"state":"online"|"offline","ts":…}`` (its last will says
``offline``). Two readers, one type: the gateway, which takes it from crates (``decode_crate_status``:
``v`` must be 1, ``ts`` is not used), and the board and ``coldchain alerts`` (``decode_status``:
any topic, bytes of any version; a ``ts`` that is no epoch millisecond is refused). Both are total:
a CrateStatus or a WireFormatError naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, STATUS, parse_topic, valid_identifier
from coldchain.wire.common import WIRE_VERSION, crate_object, describe, json_object

__all__ = ["MAX_STATUS_BYTES", "ONLINE", "STATES", "CrateStatus", "decode_crate_status", "decode_status"]

ONLINE: Final = "online"
STATES: Final = (ONLINE, "offline")
MAX_STATUS_BYTES: Final = 4096  # the agent's status is under 100 bytes
_MAX_EPOCH_MS: Final = 2**53  # exclusive: the wire's bound on epoch milliseconds


@dataclass(frozen=True, slots=True)
class CrateStatus:
    """Retained ``online``/``offline`` state of a crate."""

    crate: str
    state: str
    ts: int

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "state": self.state, "ts": self.ts}


def decode_crate_status(payload: bytes, topic_crate: str) -> CrateStatus:
    """Validate and decode the status of the crate ``topic_crate`` (the payload must name it).

    ``ts`` is read as given when it is an integer, else 0: a reader dates a status by its arrival
    (a last will's own ts is when it was registered, not when the crate vanished).
    """
    body = crate_object(payload, topic_crate)
    state = body.get("state")
    if state not in STATES:
        raise WireFormatError("schema", f"status 'state' must be online or offline, got {describe(state)}")
    ts = body.get("ts")
    return CrateStatus(topic_crate, str(state), ts if isinstance(ts, int) and not isinstance(ts, bool) else 0)


def _crate(topic: str) -> str:
    route = parse_topic(topic)
    if route.kind != STATUS or not valid_identifier(route.crate):
        raise WireFormatError("topic", f"{topic[:200]!r} is not {ROOT}/crates/{{crate}}/status with a valid crate id")
    return route.crate


def decode_status(topic: str, payload: bytes) -> CrateStatus:
    """The status retained on ``topic``, as the board and ``coldchain alerts`` read it: it must name the topic's
    crate and say online or offline.

    ``ts`` (epoch milliseconds below 2^53) defaults to 0 when missing.
    """
    crate = _crate(topic)
    body = json_object(payload, MAX_STATUS_BYTES)
    named = body.get("crate")
    if named != crate:
        shown = repr(named)[:80] if isinstance(named, str) else f"a {type(named).__name__}"
        raise WireFormatError("topic_mismatch", f"payload crate {shown} != topic crate {crate!r}")
    state = body.get("state")
    if state not in STATES:
        shown = repr(state)[:80] if isinstance(state, str) else f"a {type(state).__name__}"
        raise WireFormatError("schema", f"state {shown} is not online or offline")
    ts = body.get("ts", 0)
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < _MAX_EPOCH_MS:
        raise WireFormatError("type", "'ts' must be epoch milliseconds (an integer in 0..2^53-1)")
    return CrateStatus(crate, str(state), ts)
