"""A crate's retained online/offline state, ``coldchain/v1/crates/{crate}/status``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldchain.wire.common import WIRE_VERSION

__all__ = ["CrateStatus"]


@dataclass(frozen=True, slots=True)
class CrateStatus:
    """Retained ``online``/``offline`` state of a crate."""

    crate: str
    state: str
    ts: int

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "state": self.state, "ts": self.ts}
