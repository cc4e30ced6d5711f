"""What the board reads from the broker, as checked values, and the shape of an alarm for the page.

Retained alarms and crate status are decoded by the core (``coldchain.wire.alarm_view``: tolerant
of newer optional fields, refusing an alarm without its identity or severity;
``coldchain.wire.decode_status``): the decoders ``coldchain alerts`` uses too.
"""

from __future__ import annotations

from typing import Any

from coldchain.topics import ROOT
from coldchain.wire import AlarmView

__all__ = [
    "ALARM_FILTER",
    "STATUS_FILTER",
    "alarm_json",
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
