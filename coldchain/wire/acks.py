"""Acknowledgements: the gateway's storage ack to a crate, and a person's ack of an alarm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.topics import IDENTIFIER_RULE, valid_identifier
from coldchain.wire.common import WIRE_VERSION, crate_field, describe, field, is_text, versioned_object

__all__ = ["MAX_ACK_BY", "MAX_ACK_NOTE", "StaffAck", "StorageAck", "decode_staff_ack", "decode_storage_ack"]

MAX_ACK_BY: Final = 100
MAX_ACK_NOTE: Final = 1000


@dataclass(frozen=True, slots=True)
class StorageAck:
    """The gateway's promise: every seq up to ``stored_through`` is stored or definitively rejected."""

    crate: str
    stored_through: int

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "stored_through": self.stored_through}


@dataclass(frozen=True, slots=True)
class StaffAck:
    """A person acknowledges an alarm: ``coldchain/v1/acks/{crate}/{rule}/{sensor}``."""

    crate: str
    rule: str
    sensor: str
    by: str  # the person's name, as they gave it
    note: str
    ts: int  # when they acknowledged, UTC epoch milliseconds
    # optional: the sender's id for this ack, echoed on a refusal (coldchain/v1/rejected) so it can tell it is its own
    request: str | None = None
    # optional: the id of the alarm the person saw; the gateway refuses the ack if another alarm is current
    alarm_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        # request first: a refusal's bounded excerpt of the payload then still carries it
        body: dict[str, Any] = {"v": WIRE_VERSION}
        if self.request is not None:
            body["request"] = self.request
        body.update(crate=self.crate, rule=self.rule, sensor=self.sensor, by=self.by, note=self.note, ts=self.ts)
        if self.alarm_id is not None:
            body["id"] = self.alarm_id
        return body


def decode_storage_ack(payload: bytes, topic_crate: str | None = None) -> StorageAck:
    """Validate and decode the gateway's ``stored_through`` acknowledgement."""
    body = versioned_object(payload)
    crate = crate_field(body, topic_crate)
    stored_through = field(body, "stored_through", int)
    # -1: nothing is stored yet (a crate that numbers from 0 and announced seq 0 lost before anything came)
    if not -1 <= stored_through < 2**63:
        raise WireFormatError("range", f"stored_through {describe(stored_through)} is outside -1..2^63-1")
    return StorageAck(crate, stored_through)


def _is_alarm_id(value: object, key: str) -> bool:
    """True for ``{key}/{started_ts}``: the id of one of the alarms on that crate/rule/sensor."""
    if not isinstance(value, str) or not value.startswith(f"{key}/"):
        return False
    started = value[len(key) + 1 :]
    return 0 < len(started) <= 16 and started.isascii() and started.isdigit()


def decode_staff_ack(payload: bytes, topic_levels: tuple[str, str, str] | None = None) -> StaffAck:
    """Validate and decode a staff acknowledgement; ``topic_levels`` (crate, rule, sensor) must match it."""
    body = versioned_object(payload)
    crate = crate_field(body, None)
    ids = [crate]
    for key in ("rule", "sensor"):
        value = field(body, key, str)
        if not valid_identifier(value):
            raise WireFormatError("schema", f"{key} {value[:70]!r} is not {IDENTIFIER_RULE}")
        ids.append(value)
    if topic_levels is not None and tuple(ids) != topic_levels:
        raise WireFormatError("topic_mismatch", f"payload names {'/'.join(ids)}, topic {'/'.join(topic_levels)}")
    by = field(body, "by", str).strip()
    if not by or len(by) > MAX_ACK_BY or not by.isprintable():
        raise WireFormatError("schema", f"'by' must name a person in 1-{MAX_ACK_BY} printable characters")
    note = field(body, "note", str)
    if len(note) > MAX_ACK_NOTE:
        raise WireFormatError("size", f"'note' is {len(note)} characters, at most {MAX_ACK_NOTE}")
    if not note.isprintable() and not is_text(note):
        # JSON may spell a lone surrogate ("\ud800"): no UTF-8 text, it could be neither stored nor sent on
        raise WireFormatError("encoding", "'note' holds a lone surrogate, not text")
    ts = field(body, "ts", int)
    if not 0 < ts < 2**53:
        raise WireFormatError("range", f"ts {ts} is not a plausible epoch millisecond")
    request = body.get("request")
    if request is not None and not (isinstance(request, str) and valid_identifier(request)):
        raise WireFormatError("schema", f"'request' must be {IDENTIFIER_RULE}")
    alarm_id = body.get("id")
    if alarm_id is not None and not _is_alarm_id(alarm_id, "/".join(ids)):
        raise WireFormatError("schema", f"'id' must be the id of an alarm {'/'.join(ids)}/<started_ts>")
    return StaffAck(crate, ids[1], ids[2], by, note, ts, request, alarm_id)
