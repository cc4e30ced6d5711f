"""What the board reads from the broker and what it sends back, as checked values.

The board reads the alarm engine's retained alarms and the agents' retained status
tolerantly (a newer optional field is carried along, never a reason to drop an
alarm), but an alarm without its identity or severity is refused and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, valid_identifier

__all__ = [
    "ALARM_FILTER",
    "STATUS_FILTER",
    "AlarmView",
    "StatusView",
    "decode_alarm",
    "decode_status",
]

ALARM_FILTER = f"{ROOT}/alarms/+/+/+"
STATUS_FILTER = f"{ROOT}/crates/+/status"
ALARM_STATES = ("active", "acknowledged", "cleared")
SEVERITIES = ("info", "warning", "critical")
MAX_EXTRA = 1000  # characters of one optional field
# Optional fields of newer alarm engines that staff want to see; anything else is ignored.
_EXTRAS = (
    "kind",
    "detail",
    "late",
    "escalated",
    "predicted_ts",
    "ended_ts",
    "acknowledged_by",
    "acknowledged_ts",
    "note",
    "shipment",
)


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm as the board shows it; ``extra`` holds the optional fields listed above."""

    crate: str
    rule: str
    sensor: str
    severity: str
    state: str
    value_c: float | None
    threshold_c: float | None
    ts: int
    started_ts: int
    profile: str | None
    alarm_id: str
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """Where it lives: one retained topic per (crate, rule, sensor)."""
        return (self.crate, self.rule, self.sensor)

    def to_json(self) -> dict[str, Any]:
        """The shape the page's script renders."""
        body: dict[str, Any] = {
            "crate": self.crate,
            "rule": self.rule,
            "sensor": self.sensor,
            "severity": self.severity,
            "state": self.state,
            "value_c": self.value_c,
            "threshold_c": self.threshold_c,
            "ts": self.ts,
            "started_ts": self.started_ts,
            "profile": self.profile,
            "id": self.alarm_id,
        }
        body.update(self.extra)
        return body


@dataclass(frozen=True, slots=True)
class StatusView:
    """A crate's retained online/offline state."""

    crate: str
    state: str
    ts: int


def _topic_levels(topic: str, prefix: str, count: int) -> list[str]:
    if not topic.startswith(prefix + "/"):
        raise WireFormatError("topic", f"{topic!r} is not under {prefix}/")
    levels = topic[len(prefix) + 1 :].split("/")
    if len(levels) != count or not all(valid_identifier(x) for x in levels):
        raise WireFormatError("topic", f"{topic!r} does not name {count} valid ids after {prefix}/")
    return levels


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        raise WireFormatError("json", "payload is not JSON") from None
    if not isinstance(body, dict):
        raise WireFormatError("schema", "payload is not a JSON object")
    return body


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireFormatError("type", f"'{key}' must be a number or null")
    return float(value)


def _millis(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireFormatError("type", f"'{key}' must be epoch milliseconds")
    return value


def decode_alarm(topic: str, payload: bytes) -> AlarmView | None:
    """The alarm on a retained alarm topic; None for an empty payload (the alarm was removed)."""
    crate, rule, sensor = _topic_levels(topic, f"{ROOT}/alarms", 3)
    if not payload:
        return None
    body = _json(payload)
    if (body.get("crate"), body.get("rule"), body.get("sensor")) != (crate, rule, sensor):
        raise WireFormatError("topic_mismatch", "payload crate/rule/sensor differ from the topic")
    severity = body.get("severity")
    if severity not in SEVERITIES:
        raise WireFormatError("schema", f"severity {severity!r} is not one of {list(SEVERITIES)}")
    state = body.get("state")
    if state not in ALARM_STATES:
        raise WireFormatError("schema", f"state {state!r} is not one of {list(ALARM_STATES)}")
    ts = _millis(body, "ts")
    started_ts = _millis(body, "started_ts", ts)
    profile = body.get("profile")
    alarm_id = body.get("id")
    extra = tuple(
        (key, body[key])
        for key in _EXTRAS
        if isinstance(body.get(key), (str, int, float, bool)) and len(str(body[key])) <= MAX_EXTRA
    )
    return AlarmView(
        crate=crate,
        rule=rule,
        sensor=sensor,
        severity=severity,
        state=state,
        value_c=_number(body, "value_c"),
        threshold_c=_number(body, "threshold_c"),
        ts=ts,
        started_ts=started_ts,
        profile=profile if isinstance(profile, str) else None,
        alarm_id=alarm_id if isinstance(alarm_id, str) else f"{crate}/{rule}/{sensor}/{started_ts}",
        extra=extra,
    )


def decode_status(topic: str, payload: bytes) -> StatusView:
    """A crate's retained status message."""
    (crate, leaf) = _topic_levels(topic, f"{ROOT}/crates", 2)
    if leaf != "status":
        raise WireFormatError("topic", f"{topic!r} is not a status topic")
    body = _json(payload)
    if body.get("crate") != crate:
        raise WireFormatError("topic_mismatch", f"payload crate {body.get('crate')!r} != topic crate {crate!r}")
    state = body.get("state")
    if state not in ("online", "offline"):
        raise WireFormatError("schema", f"state {state!r} is not online or offline")
    return StatusView(crate, state, _millis(body, "ts", 0))
