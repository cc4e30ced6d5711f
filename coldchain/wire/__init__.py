"""MQTT payload contract v1: the messages crates, gateway and people exchange.

One module per kind of message: ``telemetry``, ``status``, ``events``, ``acks`` (storage and staff),
``alarms`` (the retained alarm, encoded from the alarm book's ``Alarm``, and the values of its state and
severity; its readers decode it with ``alarm_view``), ``rejects``; what they
share in ``common``; ``spooled`` sets the facts that come later on a crate's own spooled messages.
Decoders are the only way external bytes become these types; each rejects bad input with a
WireFormatError whose ``reason`` is a short stable label (counted per reason by the gateway) and
whose ``detail`` says what exactly is wrong. Everything is re-exported here:
``from coldchain.wire import X`` is how programs import it.
"""

from coldchain.wire.acks import (
    MAX_ACK_BY,
    MAX_ACK_NOTE,
    StaffAck,
    StorageAck,
    decode_staff_ack,
    decode_storage_ack,
)
from coldchain.wire.alarm_view import MAX_OPTIONAL_CHARS, OPTIONAL_FIELDS, AlarmView, decode_alarm
from coldchain.wire.alarms import ACKNOWLEDGED, ACTIVE, ALARM_STATES, CLEARED, SEVERITIES, encode_alarm
from coldchain.wire.common import MAX_PAYLOAD_BYTES, WIRE_VERSION, describe, encode, json_object, versioned_object
from coldchain.wire.events import GAP, LID_CLOSED, LID_OPEN, CrateEvent, decode_event
from coldchain.wire.rejects import Rejected, decode_rejected, request_of
from coldchain.wire.spooled import amended, restamped, signed, with_powered_on
from coldchain.wire.status import MAX_STATUS_BYTES, ONLINE, STATES, CrateStatus, decode_crate_status, decode_status
from coldchain.wire.telemetry import (
    FAULTS,
    FUTURE_TOLERANCE_MS,
    MAX_READINGS,
    PLAUSIBLE_MAX_C,
    PLAUSIBLE_MIN_C,
    TS_CORRECTED,
    TS_FLAGS,
    TS_UNCERTAIN,
    Reading,
    Telemetry,
    decode_telemetry,
    salvage_telemetry,
)

__all__ = [
    "ACKNOWLEDGED",
    "ACTIVE",
    "ALARM_STATES",
    "CLEARED",
    "FAULTS",
    "FUTURE_TOLERANCE_MS",
    "GAP",
    "LID_CLOSED",
    "LID_OPEN",
    "MAX_ACK_BY",
    "MAX_ACK_NOTE",
    "MAX_OPTIONAL_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS",
    "MAX_STATUS_BYTES",
    "ONLINE",
    "OPTIONAL_FIELDS",
    "PLAUSIBLE_MAX_C",
    "PLAUSIBLE_MIN_C",
    "SEVERITIES",
    "STATES",
    "TS_CORRECTED",
    "TS_FLAGS",
    "TS_UNCERTAIN",
    "WIRE_VERSION",
    "AlarmView",
    "CrateEvent",
    "CrateStatus",
    "Reading",
    "Rejected",
    "StaffAck",
    "StorageAck",
    "Telemetry",
    "amended",
    "decode_alarm",
    "decode_crate_status",
    "decode_event",
    "decode_rejected",
    "decode_staff_ack",
    "decode_status",
    "decode_storage_ack",
    "decode_telemetry",
    "describe",
    "encode",
    "encode_alarm",
    "json_object",
    "request_of",
    "restamped",
    "salvage_telemetry",
    "signed",
    "versioned_object",
    "with_powered_on",
]
