"""Telemetry: one sampling tick of one crate, ``coldchain/v1/crates/{crate}/telemetry``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.sentences import PROBE_STATUSES
from coldchain.topics import valid_identifier
from coldchain.wire.common import WIRE_VERSION, crate_field, describe, field, versioned_object

__all__ = [
    "FAULTS",
    "FUTURE_TOLERANCE_MS",
    "MAX_READINGS",
    "PLAUSIBLE_MAX_C",
    "PLAUSIBLE_MIN_C",
    "TS_CORRECTED",
    "TS_FLAGS",
    "TS_UNCERTAIN",
    "Reading",
    "Telemetry",
    "decode_telemetry",
    "salvage_telemetry",
]

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
    crate = crate_field(body, topic_crate)
    seq = field(body, "seq", int)
    if not 0 <= seq < 2**63:
        raise WireFormatError("range", f"seq {seq} is outside 0..2^63-1")
    ts = field(body, "ts", int)
    if not 0 < ts < 2**53:
        raise WireFormatError("range", f"ts {ts} is not a plausible epoch millisecond")
    if now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        raise WireFormatError("future_ts", f"ts {ts} is {(ts - now_ms) / 1000:.0f} s in the future")
    raw_readings = field(body, "readings", list)
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


def salvage_telemetry(payload: bytes) -> tuple[str | None, int | None, int | None, int | None]:
    """Crate, seq, ts and held_from of a refused telemetry payload, each when it can be read (never raises).

    The gateway counts the seq of a refused message as handled, and for a crate met for the first
    time waits for what it still holds below ``held_from``.
    """
    try:
        body: Any = json.loads(payload)
    except (ValueError, RecursionError):
        return None, None, None, None
    if not isinstance(body, dict):
        return None, None, None, None

    def integer(value: Any, limit: int) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < limit else None

    crate = body.get("crate")
    crate = crate if isinstance(crate, str) and valid_identifier(crate) else None
    seq = integer(body.get("seq"), 2**63)
    held_from = body.get("held_from")
    valid = seq is not None and isinstance(held_from, int) and not isinstance(held_from, bool) and 0 <= held_from <= seq
    return crate, seq, integer(body.get("ts"), 2**53), held_from if valid else None
