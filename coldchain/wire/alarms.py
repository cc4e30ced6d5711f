"""The current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``.

One message, two sides: the gateway encodes its alarm book's ``Alarm`` (``coldchain.alarms.lifecycle``)
here; readers decode the message into an ``AlarmView`` (``coldchain.wire.alarm_view``), tolerant of
optional fields a newer gateway adds.
"""

from __future__ import annotations

from collections.abc import Mapping

from coldchain.wire.common import WireMessage, encode_body

__all__ = ["encode_alarm"]


def encode_alarm(alarm: WireMessage, details: Mapping[str, str] | None = None) -> bytes:
    """The retained alarm as published: its own fields, then its shipment's ``origin``, ``destination``, ``product``."""
    body = alarm.to_wire()
    if details:
        body.update(details)
    return encode_body(body)
