"""MQTT payload contract v1: the messages crates, gateway and people exchange.

Decoders are the only way external bytes become these types; each rejects bad
input with a WireFormatError whose ``reason`` is a short stable label (counted
per reason by the gateway) and whose ``detail`` says what exactly is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.sentences import PROBE_STATUSES
from coldchain.topics import IDENTIFIER_RULE, valid_identifier

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "PLAUSIBLE_MAX_C",
    "PLAUSIBLE_MIN_C",
    "TS_CORRECTED",
    "TS_FLAGS",
    "TS_UNCERTAIN",
    "WIRE_VERSION",
    "AlarmMessage",
    "CrateStatus",
    "Reading",
    "StaffAck",
    "StorageAck",
    "Telemetry",
    "decode_staff_ack",
    "decode_storage_ack",
    "decode_telemetry",
    "describe",
    "encode",
    "json_object",
    "versioned_object",
]

WIRE_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 16_384
MAX_READINGS: Final = 64
PLAUSIBLE_MIN_C: Final = -200.0
PLAUSIBLE_MAX_C: Final = 80.0
FUTURE_TOLERANCE_MS: Final = 5 * 60 * 1000  # crates without RTC drift; beyond this is a bad clock
FAULTS: Final = PROBE_STATUSES - {"OK"}
# optional telemetry flags, only ever sent as true: the crate's wall clock was unset when it took the sample.
# ts_corrected: restamped from the monotonic clock of the same boot once the clock was set (known to within
# that clock's drift); ts_uncertain: taken in an earlier boot, so ts is still the unset clock's (unknown)
TS_CORRECTED: Final = "ts_corrected"
TS_UNCERTAIN: Final = "ts_uncertain"
TS_FLAGS: Final = (TS_CORRECTED, TS_UNCERTAIN)


@dataclass(frozen=True, slots=True)
class Reading:
    """One probe's value at the message's time; ``value_c`` is None when ``fault`` says why."""

    sensor: str
    value_c: float | None
    fault: str | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.fault is None:
            return {"sensor": self.sensor, "value_c": self.value_c}
        return {"sensor": self.sensor, "value_c": None, "fault": self.fault}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One sampling tick of one crate: ``coldchain/v1/crates/{crate}/telemetry``."""

    crate: str
    seq: int
    ts: int  # UTC epoch milliseconds of the sample
    readings: tuple[Reading, ...]
    profile: str | None = None  # optional extension: the crate's own idea of its product profile
    # optional extension: UTC epoch ms the crate's probe board was switched on (never after ``ts``),
    # so the gateway gives the probes the profile's start delay to settle
    powered_on: int | None = None
    # optional extension: the crate's spool low-water mark, the lowest seq it still holds unconfirmed. Every
    # seq below it the crate sent was confirmed stored by a storage ack or declared lost in a gap event;
    # every seq from it up to ``seq`` not yet confirmed, it still holds (and will send again)
    held_from: int | None = None
    # optional extension: TS_CORRECTED or TS_UNCERTAIN when the crate's clock was unset at the sample (one field,
    # not two booleans: the gateway's hot path tests it once per message); None for a sample of a set clock
    ts_flag: str | None = None

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": WIRE_VERSION,
            "crate": self.crate,
            "seq": self.seq,
            "ts": self.ts,
            "readings": [r.to_wire() for r in self.readings],
        }
        if self.profile is not None:
            body["profile"] = self.profile
        if self.powered_on is not None:
            body["powered_on"] = self.powered_on
        if self.held_from is not None:
            body["held_from"] = self.held_from
        if self.ts_flag is not None:
            body[self.ts_flag] = True
        return body


@dataclass(frozen=True, slots=True)
class CrateStatus:
    """Retained ``online``/``offline`` state of a crate."""

    crate: str
    state: str
    ts: int

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "state": self.state, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class StorageAck:
    """The gateway's promise: every seq up to ``stored_through`` is stored or definitively rejected."""

    crate: str
    stored_through: int

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "crate": self.crate, "stored_through": self.stored_through}


@dataclass(frozen=True, slots=True)
class AlarmMessage:
    """Current state of one alarm, retained on ``coldchain/v1/alarms/{crate}/{rule}/{sensor}``."""

    crate: str
    rule: str
    sensor: str
    severity: str
    state: str  # "active" or "cleared"
    value_c: float | None
    threshold_c: float | None
    ts: int  # time of the reading that caused this transition
    seq: int  # seq of that reading
    started_ts: int  # when the condition began (the alarm's identity with crate, rule, sensor)
    profile: str

    @property
    def alarm_id(self) -> str:
        """Deterministic identity: the same excursion always gets the same id."""
        return f"{self.crate}/{self.rule}/{self.sensor}/{self.started_ts}"

    def to_wire(self) -> dict[str, Any]:
        body = asdict(self)
        body["v"] = WIRE_VERSION
        body["id"] = self.alarm_id
        return body


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


def encode(message: Telemetry | CrateStatus | StorageAck | AlarmMessage | StaffAck) -> bytes:
    """Compact JSON bytes of a message, as published."""
    return json.dumps(message.to_wire(), separators=(",", ":"), allow_nan=False).encode()


def describe(value: Any) -> str:
    """A short, safe description of any decoded JSON value for an error's detail.

    ``repr`` of a deeply nested value can itself exceed the recursion limit, and of a huge one
    fill the log: containers are named by type, scalars are cut to 70 characters.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value[:70] if isinstance(value, str) else value)
        return text if len(text) <= 72 else text[:69] + "..."
    return "a JSON object" if isinstance(value, dict) else f"a JSON {'array' if isinstance(value, list) else 'value'}"


def _is_text(text: str) -> bool:
    """True when ``text`` is valid Unicode (JSON escapes can make strings UTF-8 cannot encode)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def json_object(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES, *, constants: bool = True) -> dict[str, Any]:
    """The JSON object ``payload`` holds, as every reader of the wire takes it; WireFormatError otherwise.

    UTF-8 only (RFC 8259): ``json.loads`` given bytes would also take UTF-16, UTF-32, a byte-order
    mark and UTF-8 that encodes lone surrogates, so the bytes are decoded strictly first. Reasons:
    ``size`` (over ``max_bytes``), ``encoding``, ``json`` (not JSON, nested too deeply, or, unless
    ``constants``, holding NaN or Infinity) and ``schema`` (not an object).
    """
    if len(payload) > max_bytes:
        raise WireFormatError("size", f"payload of {len(payload)} bytes exceeds {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireFormatError("encoding", f"payload is not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise WireFormatError("encoding", "payload starts with a byte-order mark (RFC 8259 forbids it)")
    try:
        body = json.loads(text) if constants else json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise WireFormatError("json", "payload is nested too deeply") from None
    except ValueError as exc:  # integers of too many digits, and refused constants, included
        raise WireFormatError("json", f"payload is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise WireFormatError("schema", f"payload is a JSON {type(body).__name__}, not an object")
    return body


def versioned_object(payload: bytes) -> dict[str, Any]:
    """``json_object`` of a message crates or people send: it must say ``"v": 1`` (reason ``version``)."""
    body = json_object(payload)
    version = body.get("v")
    if version != WIRE_VERSION or isinstance(version, bool):
        raise WireFormatError("version", f"'v' is {describe(version)}, this gateway speaks {WIRE_VERSION}")
    return body


def _field(body: dict[str, Any], key: str, kind: type, reason: str = "schema") -> Any:
    if key not in body:
        raise WireFormatError(reason, f"required field '{key}' is missing")
    value = body[key]
    # bool is an int in Python but never a valid number on our wire
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WireFormatError("type", f"'{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def _crate(body: dict[str, Any], topic_crate: str | None) -> str:
    crate: str = _field(body, "crate", str)
    if not valid_identifier(crate):
        raise WireFormatError("crate", f"crate id {crate[:70]!r} is not {IDENTIFIER_RULE}")
    if topic_crate is not None and crate != topic_crate:
        raise WireFormatError("crate_mismatch", f"payload crate {crate!r} != topic crate {topic_crate!r}")
    return crate


def _reading(raw: Any, index: int) -> Reading:
    if not isinstance(raw, dict):
        raise WireFormatError("schema", f"readings[{index}] is not an object")
    sensor = raw.get("sensor")
    if not isinstance(sensor, str) or not valid_identifier(sensor):
        raise WireFormatError("schema", f"readings[{index}].sensor {describe(sensor)} is not a valid sensor id")
    value = raw.get("value_c", ...)
    fault = raw.get("fault")
    if value is ...:
        raise WireFormatError("schema", f"readings[{index}].value_c is missing")
    if value is None:
        # any JSON type may stand here: only a string can be one of the faults
        if not isinstance(fault, str) or fault not in FAULTS:
            raise WireFormatError(
                "schema",
                f"readings[{index}] has value_c null but fault {describe(fault)} is not one of {sorted(FAULTS)}",
            )
        return Reading(sensor, None, fault)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise WireFormatError("type", f"readings[{index}].value_c must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise WireFormatError("range", f"readings[{index}].value_c is not finite")
    # compared before float(): an integer beyond a float's range would raise OverflowError there
    if not PLAUSIBLE_MIN_C <= value <= PLAUSIBLE_MAX_C:
        raise WireFormatError(
            "range", f"readings[{index}].value_c {describe(value)} is outside {PLAUSIBLE_MIN_C}..{PLAUSIBLE_MAX_C} °C"
        )
    if fault is not None:
        raise WireFormatError("schema", f"readings[{index}] has both a value and fault {describe(fault)}")
    return Reading(sensor, float(value))


def decode_telemetry(payload: bytes, topic_crate: str | None = None, now_ms: int | None = None) -> Telemetry:
    """Validate and decode a telemetry payload.

    ``topic_crate`` is the crate named by the topic (must equal the payload's);
    ``now_ms`` enables the check that ``ts`` is not in the future beyond a tolerance.
    The optional ``powered_on`` must be an epoch millisecond no later than ``ts``,
    the optional ``held_from`` a seq no higher than ``seq``, the optional ``ts_corrected`` and
    ``ts_uncertain`` booleans (false or null: as if absent; both true: ``ts_uncertain``, the weaker claim).
    """
    body = versioned_object(payload)
    crate = _crate(body, topic_crate)
    seq = _field(body, "seq", int)
    if not 0 <= seq < 2**63:
        raise WireFormatError("range", f"seq {seq} is outside 0..2^63-1")
    ts = _field(body, "ts", int)
    if not 0 < ts < 2**53:
        raise WireFormatError("range", f"ts {ts} is not a plausible epoch millisecond")
    if now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        raise WireFormatError("future_ts", f"ts {ts} is {(ts - now_ms) / 1000:.0f} s in the future")
    raw_readings = _field(body, "readings", list)
    if not raw_readings or len(raw_readings) > MAX_READINGS:
        raise WireFormatError("schema", f"readings must hold 1..{MAX_READINGS} entries, got {len(raw_readings)}")
    readings = tuple(_reading(raw, i) for i, raw in enumerate(raw_readings))
    if len({r.sensor for r in readings}) != len(readings):
        raise WireFormatError("schema", "readings name the same sensor twice")
    profile = body.get("profile")
    if profile is not None and (not isinstance(profile, str) or not valid_identifier(profile)):
        raise WireFormatError("schema", f"profile {describe(profile)} is not a valid profile name")
    powered_on = body.get("powered_on")
    if powered_on is not None:
        if not isinstance(powered_on, int) or isinstance(powered_on, bool):
            raise WireFormatError("type", f"'powered_on' must be int, got {type(powered_on).__name__}")
        if not 0 < powered_on <= ts:
            raise WireFormatError("range", f"powered_on {powered_on} is not an epoch millisecond at or before ts {ts}")
    held_from = body.get("held_from")
    if held_from is not None:
        if not isinstance(held_from, int) or isinstance(held_from, bool):
            raise WireFormatError("type", f"'held_from' must be int, got {type(held_from).__name__}")
        if not 0 <= held_from <= seq:
            raise WireFormatError("range", f"held_from {held_from} is outside 0..seq {seq}")
    flagged = TS_CORRECTED in body or TS_UNCERTAIN in body  # rare: no function call for the others
    return Telemetry(crate, seq, ts, readings, profile, powered_on, held_from, _ts_flag(body) if flagged else None)


def _ts_flag(body: dict[str, Any]) -> str | None:
    """Which of the time flags a telemetry body sets: TS_UNCERTAIN before TS_CORRECTED, None for neither."""
    found = None
    for key in TS_FLAGS:
        value = body.get(key)
        if value is not None and not isinstance(value, bool):
            raise WireFormatError("type", f"'{key}' must be bool, got {type(value).__name__}")
        if value:
            found = key  # TS_UNCERTAIN comes last: a ts both restamped and the wrong clock's is not known
    return found


def decode_storage_ack(payload: bytes, topic_crate: str | None = None) -> StorageAck:
    """Validate and decode the gateway's ``stored_through`` acknowledgement."""
    body = versioned_object(payload)
    crate = _crate(body, topic_crate)
    stored_through = _field(body, "stored_through", int)
    # -1: nothing is stored yet (a crate that numbers from 0 and announced seq 0 lost before anything came)
    if not -1 <= stored_through < 2**63:
        raise WireFormatError("range", f"stored_through {describe(stored_through)} is outside -1..2^63-1")
    return StorageAck(crate, stored_through)


MAX_ACK_BY: Final = 100
MAX_ACK_NOTE: Final = 1000


def _is_alarm_id(value: object, key: str) -> bool:
    """True for ``{key}/{started_ts}``: the id of one of the alarms on that crate/rule/sensor."""
    if not isinstance(value, str) or not value.startswith(f"{key}/"):
        return False
    started = value[len(key) + 1 :]
    return 0 < len(started) <= 16 and started.isascii() and started.isdigit()


def decode_staff_ack(payload: bytes, topic_levels: tuple[str, str, str] | None = None) -> StaffAck:
    """Validate and decode a staff acknowledgement; ``topic_levels`` (crate, rule, sensor) must match it."""
    body = versioned_object(payload)
    crate = _crate(body, None)
    ids = [crate]
    for key in ("rule", "sensor"):
        value = _field(body, key, str)
        if not valid_identifier(value):
            raise WireFormatError("schema", f"{key} {value[:70]!r} is not {IDENTIFIER_RULE}")
        ids.append(value)
    if topic_levels is not None and tuple(ids) != topic_levels:
        raise WireFormatError("topic_mismatch", f"payload names {'/'.join(ids)}, topic {'/'.join(topic_levels)}")
    by = _field(body, "by", str).strip()
    if not by or len(by) > MAX_ACK_BY or not by.isprintable():
        raise WireFormatError("schema", f"'by' must name a person in 1-{MAX_ACK_BY} printable characters")
    note = _field(body, "note", str)
    if len(note) > MAX_ACK_NOTE:
        raise WireFormatError("size", f"'note' is {len(note)} characters, at most {MAX_ACK_NOTE}")
    if not note.isprintable() and not _is_text(note):
        # JSON may spell a lone surrogate ("\ud800"): no UTF-8 text, it could be neither stored nor sent on
        raise WireFormatError("encoding", "'note' holds a lone surrogate, not text")
    ts = _field(body, "ts", int)
    if not 0 < ts < 2**53:
        raise WireFormatError("range", f"ts {ts} is not a plausible epoch millisecond")
    request = body.get("request")
    if request is not None and not (isinstance(request, str) and valid_identifier(request)):
        raise WireFormatError("schema", f"'request' must be {IDENTIFIER_RULE}")
    alarm_id = body.get("id")
    if alarm_id is not None and not _is_alarm_id(alarm_id, "/".join(ids)):
        raise WireFormatError("schema", f"'id' must be the id of an alarm {'/'.join(ids)}/<started_ts>")
    return StaffAck(crate, ids[1], ids[2], by, note, ts, request, alarm_id)
