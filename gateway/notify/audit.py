"""The audit trail: every alarm change as a point of InfluxDB measurement ``alarm`` (who, what, when).

Same tags and field types as the gateway's threshold alarm points (``state``,
``seq``, ``started_ts``, ``value_c``, ``threshold_c``, ``id``), extended with the
lifecycle: ``change``, who acknowledged (``by``, the README's name) with what
``note``, ``late``, ``ended_ts``. Timestamped at the change (``AlarmChange.ts``),
so a replay rewrites the same point.

An escalation is no transition of ``state`` (the alarm stays active): it is written
as field ``escalated_ts`` onto the point that raised the alarm (same series, its
``raised_ts``), which InfluxDB merges into that point. A separate ``active`` point
would list the excursion twice to anyone asking for ``state = 'active'``.
"""

from __future__ import annotations

from coldchain.alarms.lifecycle import ACKNOWLEDGED, ESCALATED, AlarmChange
from coldchain.record.lineprotocol import FieldValue, point

__all__ = ["audit_point"]


def audit_point(event: AlarmChange) -> str:
    """One line of line protocol for ``event``."""
    alarm = event.alarm
    tags = {
        "crate": alarm.crate,
        "rule": alarm.rule,
        "sensor": alarm.sensor,
        "severity": alarm.severity,
        "profile": alarm.profile,
        "shipment": alarm.shipment or "",
    }
    if event.change == ESCALATED:
        # only the new field: any other would overwrite the raising point's own value
        return point("alarm", tags, {"escalated_ts": event.ts}, alarm.raised_ts)
    fields: dict[str, FieldValue] = {
        # the review of an alarm that cleared unacknowledged is an acknowledgement like any other to the audit trail
        "state": ACKNOWLEDGED if event.change == ACKNOWLEDGED else alarm.state,
        "change": event.change,
        "started_ts": alarm.started_ts,
        "id": alarm.alarm_id,
        "kind": alarm.kind,
        "late": alarm.late,
        "pages": event.pages,
    }
    optional: dict[str, FieldValue | None] = {
        "seq": alarm.seq,
        "value_c": alarm.value_c,
        "threshold_c": alarm.threshold_c,
        "ended_ts": alarm.ended_ts,
        "predicted_ts": alarm.predicted_ts,
        "detail": alarm.detail or None,
    }
    if event.change == ACKNOWLEDGED:
        optional |= {"by": alarm.acknowledged_by, "note": alarm.note}
    fields |= {key: value for key, value in optional.items() if value is not None}
    return point("alarm", tags, fields, event.ts)
