"""A crate's retained online/offline state, ``coldchain/v1/crates/{crate}/status``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.wire.common import WIRE_VERSION, crate_object, describe

__all__ = ["ONLINE", "STATES", "CrateStatus", "decode_crate_status"]

ONLINE: Final = "online"
STATES: Final = (ONLINE, "offline")


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
