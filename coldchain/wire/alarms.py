"""The current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from coldchain.wire.common import WIRE_VERSION

__all__ = ["AlarmMessage"]


@dataclass(frozen=True, slots=True)
class AlarmMessage:
    """Current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``."""

    crate: str
    rule: str
    sensor: str
    severity: str
    state: str  # "active" or "cleared"
    value_c: float | None
    threshold_c: float | None
    ts: int  # time of the reading that caused this transition
    seq: int  # seq of that reading
    started_ts: int  # when the condition began (the alarm's identity with crate, rule, sensor)
    profile: str

    @property
    def alarm_id(self) -> str:
        """Deterministic identity: the same excursion always gets the same id."""
        return f"{self.crate}/{self.rule}/{self.sensor}/{self.started_ts}"

    def to_wire(self) -> dict[str, Any]:
        body = asdict(self)
        body["v"] = WIRE_VERSION
        body["id"] = self.alarm_id
        return body
