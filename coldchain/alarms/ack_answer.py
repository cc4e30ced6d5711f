"""The gateway's answer to one staff acknowledgement, recognised among the messages a sender receives.

A sender (``coldchain ack``, the board) publishes a ``StaffAck`` carrying its own ``request`` id and
then listens to the alarm's retained topic and to ``coldchain/v1/rejected``. The gateway answers in
one of two ways: it records the ack, and the retained alarm then names this person with this ack's
``ts`` (and the alarm id the ack named); or it refuses it, and the refusal carries the ``request`` id.
Nothing else counts as an answer: another person's acknowledgement of the same alarm is not this one.

``answer_to`` is total: any topic and any bytes give an AckAnswer or None, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from coldchain.errors import WireFormatError
from coldchain.topics import alarm_topic, rejected_topic
from coldchain.wire import AlarmView, StaffAck, decode_alarm, decode_rejected

__all__ = ["AckAnswer", "answer_to", "recorded_in"]

MAX_REASON_CHARS: Final = 600  # a refusal's detail is at most 500 characters on the wire


@dataclass(frozen=True, slots=True)
class AckAnswer:
    """``recorded`` with the alarm as the gateway now retains it, or refused with the gateway's reason."""

    recorded: bool
    reason: str = ""  # why it was refused ("ack_rejected: alarm ... is already acknowledged by ...")
    alarm: AlarmView | None = None


def _printable(value: object) -> str:
    text = value if isinstance(value, str) else ""
    text = text[:MAX_REASON_CHARS]
    return text if text.isprintable() else text.encode("unicode_escape", "replace").decode("ascii")


def _refusal(ack: StaffAck, payload: bytes) -> AckAnswer | None:
    if ack.request is None:
        return None
    try:
        refusal = decode_rejected(payload)
    except WireFormatError:
        return None
    if refusal.request != ack.request:
        return None
    reason, detail = _printable(refusal.reason) or "refused", _printable(refusal.detail)
    return AckAnswer(False, f"{reason}: {detail}" if detail else reason)


def recorded_in(ack: StaffAck, alarm: AlarmView | None) -> AckAnswer | None:
    """``recorded`` when the alarm's retained state is ``ack`` recorded: its alarm, this person, this ack's ts."""
    if alarm is None or alarm.key != (ack.crate, ack.rule, ack.sensor):
        return None
    if ack.alarm_id is not None and alarm.alarm_id != ack.alarm_id:
        return None
    if alarm.optional("acknowledged_by") != ack.by or alarm.optional("acknowledged_ts") != ack.ts:
        return None
    return AckAnswer(True, alarm=alarm)


def _recorded(ack: StaffAck, topic: str, payload: bytes) -> AckAnswer | None:
    try:
        return recorded_in(ack, decode_alarm(topic, payload))
    except WireFormatError:
        return None


def answer_to(ack: StaffAck, topic: str, payload: bytes) -> AckAnswer | None:
    """The gateway's answer to ``ack`` when the message on ``topic`` is one; None for any other message."""
    if topic == rejected_topic():
        return _refusal(ack, payload)
    if topic == alarm_topic(ack.crate, ack.rule, ack.sensor):
        return _recorded(ack, topic, payload)
    return None
