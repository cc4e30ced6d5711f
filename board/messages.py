"""What the board reads from the broker and what it sends back, as checked values.

Retained alarms are decoded by the core (``coldchain.alarm_view``: tolerant of newer
optional fields, refusing an alarm without its identity or severity); this module
decodes the agents' retained status and shapes an alarm for the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coldchain.alarm_view import AlarmView
from coldchain.errors import WireFormatError
from coldchain.topics import ROOT, valid_identifier

__all__ = [
    "ALARM_FILTER",
    "STATUS_FILTER",
    "StatusView",
    "alarm_json",
    "decode_status",
]

ALARM_FILTER = f"{ROOT}/alarms/+/+/+"
STATUS_FILTER = f"{ROOT}/crates/+/status"


def alarm_json(alarm: AlarmView) -> dict[str, Any]:
    """The shape the page's script renders: the alarm's fields and the optional ones it carries."""
    body: dict[str, Any] = {
        "crate": alarm.crate,
        "rule": alarm.rule,
        "sensor": alarm.sensor,
        "severity": alarm.severity,
        "state": alarm.state,
        "value_c": alarm.value_c,
        "threshold_c": alarm.threshold_c,
        "ts": alarm.ts,
        "started_ts": alarm.started_ts,
        "profile": alarm.profile,
        "id": alarm.alarm_id,
    }
    body.update(alarm.extra)
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


def _millis(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireFormatError("type", f"'{key}' must be epoch milliseconds")
    return value


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
