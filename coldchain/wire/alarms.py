"""The current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from coldchain.wire.common import WIRE_VERSION, WireMessage, encode_body

__all__ = ["AlarmMessage", "encode_alarm"]


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


def encode_alarm(alarm: WireMessage, details: Mapping[str, str] | None = None) -> bytes:
    """The retained alarm as published: its own fields, then its shipment's ``origin``, ``destination``, ``product``."""
    body = alarm.to_wire()
    if details:
        body.update(details)
    return encode_body(body)
