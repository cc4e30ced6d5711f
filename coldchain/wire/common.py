"""What every message of MQTT payload contract v1 shares: the JSON object, its version, error details.

Decoders are the only way external bytes become the wire's types; each rejects bad input with a
WireFormatError whose ``reason`` is a short stable label (counted per reason by the gateway) and
whose ``detail`` says what exactly is wrong.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from coldchain.errors import WireFormatError
from coldchain.topics import IDENTIFIER_RULE, valid_identifier

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "WIRE_VERSION",
    "WireMessage",
    "crate_field",
    "crate_object",
    "describe",
    "encode",
    "encode_body",
    "field",
    "is_text",
    "json_object",
    "versioned_object",
]

WIRE_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 16_384


class WireMessage(Protocol):
    """Any message of the wire: it knows its JSON body."""

    def to_wire(self) -> dict[str, Any]:
        """The message's JSON body, as published."""
        ...


def encode(message: WireMessage) -> bytes:
    """Compact JSON bytes of a message, as published."""
    return encode_body(message.to_wire())


def encode_body(body: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a message's body, as published (a wire number is never NaN or infinite)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def describe(value: Any) -> str:
    """A short, safe description of any decoded JSON value for an error's detail.

    ``repr`` of a deeply nested value can itself exceed the recursion limit, and of a huge one
    fill the log: containers are named by type, scalars are cut to 70 characters.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value[:70] if isinstance(value, str) else value)
        return text if len(text) <= 72 else text[:69] + "..."
    return "a JSON object" if isinstance(value, dict) else f"a JSON {'array' if isinstance(value, list) else 'value'}"


def is_text(text: str) -> bool:
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


def field(body: dict[str, Any], key: str, kind: type, reason: str = "schema") -> Any:
    """``body[key]`` when it is a ``kind`` (never a bool); WireFormatError ``reason`` when missing, ``type`` else."""
    if key not in body:
        raise WireFormatError(reason, f"required field '{key}' is missing")
    value = body[key]
    # bool is an int in Python but never a valid number on our wire
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WireFormatError("type", f"'{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def crate_field(body: dict[str, Any], topic_crate: str | None) -> str:
    """The body's valid ``crate`` id, equal to ``topic_crate`` when that is given; WireFormatError otherwise."""
    crate: str = field(body, "crate", str)
    if not valid_identifier(crate):
        raise WireFormatError("crate", f"crate id {crate[:70]!r} is not {IDENTIFIER_RULE}")
    if topic_crate is not None and crate != topic_crate:
        raise WireFormatError("crate_mismatch", f"payload crate {crate!r} != topic crate {topic_crate!r}")
    return crate


def crate_object(payload: bytes, topic_crate: str) -> dict[str, Any]:
    """``versioned_object`` of a crate's status or event: it must name ``topic_crate`` (reason ``crate_mismatch``)."""
    body = versioned_object(payload)
    if body.get("crate") != topic_crate:
        claimed = describe(body.get("crate"))
        raise WireFormatError("crate_mismatch", f"payload crate {claimed} != topic crate {topic_crate!r}")
    return body
