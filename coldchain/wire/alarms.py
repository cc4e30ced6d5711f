"""The current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``.

One message, two sides: the gateway encodes its alarm book's ``Alarm`` (``coldchain.alarms.lifecycle``)
here; readers decode the message into an ``AlarmView`` (``coldchain.wire.alarm_view``), tolerant of
optional fields a newer gateway adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from coldchain.wire.common import WireMessage, encode_body

__all__ = ["ACKNOWLEDGED", "ACTIVE", "ALARM_STATES", "CLEARED", "SEVERITIES", "encode_alarm"]

# The values of an alarm message's "state" and "severity" (README, alarm payload): the wire owns them,
# rules, profiles and the alarm book use them.
ACTIVE: Final = "active"
ACKNOWLEDGED: Final = "acknowledged"
CLEARED: Final = "cleared"
ALARM_STATES: Final = (ACTIVE, ACKNOWLEDGED, CLEARED)
SEVERITIES: Final = ("info", "warning", "critical")


def encode_alarm(alarm: WireMessage, details: Mapping[str, str] | None = None) -> bytes:
    """The retained alarm as published: its own fields, then its shipment's ``origin``, ``destination``, ``product``."""
    body = alarm.to_wire()
    if details:
        body.update(details)
    return encode_body(body)
