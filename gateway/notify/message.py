"""What a notification says: the JSON body every channel carries, and its human wording."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from coldchain.alarms.lifecycle import AlarmChange

__all__ = ["describe", "notification_body"]


def notification_body(event: AlarmChange, shipment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON a channel delivers for ``event``: the change and when, whether it pages, and the alarm as on MQTT.

    ``shipment``: origin, destination and product (those known) of the record of the shipment the
    alarm's crate is on. The alarm carries them as on MQTT, and ``shipment`` gathers them with the id.
    """
    alarm = event.alarm.to_wire()
    body = {"v": 1, "key": event.idempotency_key, "change": event.change, "ts": event.ts, "pages": event.pages}
    if shipment:
        alarm.update(shipment)
        body["shipment"] = {"id": event.alarm.shipment, **shipment}
    body["alarm"] = alarm
    return body


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(body: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) for people; a late alarm says plainly that it is history, not an emergency."""
    alarm = body["alarm"]
    change = body["change"]
    where = f"crate {alarm['crate']}, {alarm['rule']} on {alarm['sensor']}"
    late = " (LATE: happened while the crate was offline, already over)" if alarm.get("late") else ""
    subject = f"[coldchain] {alarm['severity'].upper()} {change}: {where}{late}"
    lines = [
        f"{change.upper()}{late}",
        f"Crate: {alarm['crate']}  Profile: {alarm.get('profile') or '-'}  Shipment: {alarm.get('shipment') or '-'}",
        f"Rule: {alarm['rule']} ({alarm['kind']}, {alarm['severity']})    Sensor: {alarm['sensor']}",
        f"Started: {_when(alarm['started_ts'])}    Ended: {_when(alarm.get('ended_ts'))}",
    ]
    shipment = body.get("shipment") or {}
    if shipment:
        lines.append(f"Product: {shipment.get('product') or '-'}")
        lines.append(f"From: {shipment.get('origin') or '-'}    To: {shipment.get('destination') or '-'}")
    if alarm.get("value_c") is not None:
        lines.append(f"Value: {alarm['value_c']} °C    Limit: {alarm.get('threshold_c')} °C")
    if alarm.get("detail"):
        lines.append(f"Detail: {alarm['detail']}")
    if alarm.get("acknowledged_by"):
        lines.append(
            f"Acknowledged by {alarm['acknowledged_by']} at {_when(alarm['acknowledged_ts'])}: {alarm['note']}"
        )
    lines += [
        "",
        f"Alarm id: {alarm['id']}",
        f"Acknowledge: coldchain ack {alarm['crate']} {alarm['rule']} {alarm['sensor']} --by NAME --note TEXT",
    ]
    return subject, "\n".join(lines) + "\n"
