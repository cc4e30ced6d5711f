"""The contract's verdict on one MQTT message, for the fuzz test (test_gateway_fuzz, fuzz_corpus).

A small model of the README and docs/gateway.md, written apart from the gateway's code: whether a message is
accepted (stored, or taken as an alarm input) or must be refused, and which seq a refused telemetry message still
settles for its crate ("whose crate and seq can still be read counts as handled"); and ``Message``, one publication
of the stream with what the gateway must do with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

MAX_PAYLOAD = 16_384
FUTURE_TOLERANCE_MS = 300_000  # [validation] future_tolerance, default
FAULTS = ("OPEN", "SHORT", "RANGE")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def is_id(value: Any) -> bool:
    """A crate, sensor, rule or profile id of the README: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def reserved(crate: str) -> bool:
    """A staff or service login (never a crate)."""
    return crate.startswith(("staff.", "coldchain-"))


def _int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value < high


# README, the events row: each position or orientation event's required and optional fields
PLACE_FIELDS = {
    "position": (("lat", "lon"), ("speed_kmh", "satellites")),
    "gps_no_fix": ((), ("satellites",)),
    "orientation": (("tilt_deg",), ()),
    "shock": (("shock_g", "tilt_deg"), ()),
}
PLACE_RANGES = {"lat": (-90, 90), "lon": (-180, 180), "speed_kmh": (0, 2000), "tilt_deg": (0, 180), "shock_g": (0, 400)}


def _place_ok(body: dict[str, Any], fields: tuple[tuple[str, ...], tuple[str, ...]]) -> bool:
    required, optional = fields
    for key in (*required, *(k for k in optional if body.get(k) is not None)):
        value = body.get(key)
        if key == "satellites":
            if not _int(value, 0, 256):
                return False
        elif type(value) not in (int, float) or not PLACE_RANGES[key][0] <= value <= PLACE_RANGES[key][1]:
            return False
    return True


def _object(payload: bytes) -> dict[str, Any] | None:
    """The payload as a v1 JSON object (UTF-8, at most 16 KiB), or None."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or type(body.get("v")) is not int or body["v"] != 1:
        return None
    return body


def _body(payload: bytes, crate: str) -> dict[str, Any] | None:
    """The payload as a v1 JSON object naming ``crate``, or None when the contract refuses it as such."""
    body = _object(payload) if is_id(crate) and not reserved(crate) else None
    return body if body is not None and body.get("crate") == crate else None


def valid_ack(topic: str, payload: bytes, now_ms: int) -> tuple[str, str, str, str, str, int] | None:
    """(crate, rule, sensor, by, note, ts) of a well-formed staff ack its topic names; None when it is not one."""
    body = _object(payload)
    if body is None:
        return None
    ids, by, note, ts = (
        (body.get("crate"), body.get("rule"), body.get("sensor")),
        body.get("by"),
        body.get("note"),
        body.get("ts"),
    )
    if not all(is_id(i) for i in ids) or "/".join(ids) != topic.removeprefix("coldchain/v1/acks/"):
        return None
    if (
        not isinstance(by, str)
        or not isinstance(note, str)
        or not _int(ts, 1, 2**53)
        or ts > now_ms + FUTURE_TOLERANCE_MS
    ):
        return None
    by = by.strip()
    if not by or len(by) > 100 or not by.isprintable() or len(note) > 1000 or not _text(note):
        return None
    return (*ids, by, note, ts)


def _text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False  # a lone surrogate
    return True


def _value_ok(value: Any) -> bool:
    if type(value) not in (int, float):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and -200.0 <= number <= 80.0


def _reading_ok(raw: Any) -> bool:
    if not isinstance(raw, dict) or not is_id(raw.get("sensor")) or "value_c" not in raw:
        return False
    value, fault = raw["value_c"], raw.get("fault")
    if value is None:
        return isinstance(fault, str) and fault in FAULTS
    return _value_ok(value) and fault is None


def signature(body: dict[str, Any], key: bytes) -> str:
    """The README's HMAC-SHA256 over the payload without ``sig``, keys sorted, compact JSON (ValueError: none)."""
    unsigned = {k: v for k, v in body.items() if k != "sig"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _verifies(body: dict[str, Any], keys: dict[str, bytes] | None) -> bool:
    """No keys: nothing is checked. Keys (signatures required): the crate has one and ``sig`` matches."""
    if keys is None:
        return True
    crate, sig = body.get("crate"), body.get("sig")
    key = keys.get(crate) if isinstance(crate, str) else None
    try:
        return key is not None and isinstance(sig, str) and sig == signature(body, key)
    except ValueError:
        return False  # NaN or a lone surrogate: no crate could have signed it


def accepted(
    topic: str, payload: bytes, now_ms: int, keys: dict[str, bytes] | None = None, active: Collection[str] = ()
) -> bool:
    """True when the contract accepts this message (stored or taken as an alarm input, no reject).

    ``active``: crate/rule/sensor of the alarms that are active and not acknowledged (any other ack is refused).
    """
    parts = topic.split("/")
    if parts[2] == "acks":
        ack = valid_ack(topic, payload, now_ms)
        return ack is not None and "/".join(ack[:3]) in active
    crate, kind = parts[3], parts[4]
    body = _body(payload, crate)
    if body is None:
        return False
    if kind == "status":
        return body.get("state") in ("online", "offline")
    if kind == "events":
        event = body.get("event")
        ts = body.get("ts")
        if not _int(ts, 1, 2**63) or ts > now_ms + FUTURE_TOLERANCE_MS or not isinstance(event, str):
            return False
        if event in PLACE_FIELDS:
            return _place_ok(body, PLACE_FIELDS[event])
        first, last = body.get("first_seq"), body.get("last_seq")
        return event != "gap" or (_int(first, 0, 2**63) and _int(last, 0, 2**63) and last >= first)
    seq, ts, readings = body.get("seq"), body.get("ts"), body.get("readings")
    if not (_int(seq, 0, 2**63) and _int(ts, 1, 2**53) and isinstance(readings, list)):
        return False
    if ts > now_ms + FUTURE_TOLERANCE_MS:
        return False
    if not 1 <= len(readings) <= 64 or not all(_reading_ok(r) for r in readings):
        return False
    if len({r["sensor"] for r in readings}) != len(readings):
        return False
    profile, powered_on = body.get("profile"), body.get("powered_on")
    if not (profile is None or is_id(profile)) or not (powered_on is None or _int(powered_on, 1, ts + 1)):
        return False
    return _verifies(body, keys)


def readable_seq(topic: str, payload: bytes, keys: dict[str, bytes] | None = None) -> int | None:
    """The seq a refused telemetry settles for its topic's crate: its crate and seq can still be read (and,
    where signatures are checked, its crate's signature on it verifies)."""
    parts = topic.split("/")
    if parts[2] != "crates" or parts[4] != "telemetry" or not is_id(parts[3]) or reserved(parts[3]):
        return None
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("crate") != parts[3] or not _int(body.get("seq"), 1, 2**63):
        return None
    return int(body["seq"]) if _verifies(body, keys) else None


@dataclass(frozen=True)
class Message:
    """One publication of the stream: what the gateway must do with it."""

    topic: str
    payload: bytes
    label: str  # how it was made, for failure messages
    hostile: bool = False  # exactly one reject expected
    readings: dict[str, float | str] = field(default_factory=dict)  # sensor -> value or fault, when it is stored
    crate: str = ""  # the crate whose seq it stores or settles
    seq: int = 0
    ts: int = 0
    ack: tuple[str, str, str, str, int] | None = None  # rule, sensor, by, note, ts of an accepted staff ack
    qos: int = 1  # a crate may publish at QoS 0 too: the gateway gets it at QoS 0 (packet id 0)
    properties: bool = False  # published with MQTT 5 properties the gateway must skip (large user properties...)

    def reject_key(self) -> tuple[str, str]:
        """(topic, excerpt) as a reject reports them (docs/gateway.md: topic, the first 256 bytes)."""
        return self.topic[:200], self.payload[:256].decode("utf-8", "replace")

    def describe(self) -> str:
        """Index-free description for a failure message."""
        return f"{self.label} on {self.topic[:80]!r}: {self.payload[:120]!r}{'...' if len(self.payload) > 120 else ''}"
