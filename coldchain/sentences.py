"""Probe firmware protocol v1: NMEA-style serial sentences.

Framing: ``$<TYPE>,<field>,...*HH\\r\\n`` where ``HH`` is two uppercase hex
digits of the XOR of every byte between ``$`` and ``*``. The full protocol is
documented in ``docs/firmware-protocol.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from coldchain.errors import SentenceError
from coldchain.topics import valid_identifier

__all__ = [
    "LID_STATES",
    "PROBE_STATUSES",
    "AckSentence",
    "ClockSentence",
    "CommandSentence",
    "HeartbeatSentence",
    "LidSentence",
    "Sentence",
    "TemperatureSentence",
    "TiltSentence",
    "checksum",
    "frame",
    "parse_sentence",
]

PROBE_STATUSES: Final = frozenset({"OK", "OPEN", "SHORT", "RANGE"})
LID_STATES: Final = frozenset({"OPEN", "CLOSED"})
MAX_SHOCK_G: Final = 400.0  # beyond any accelerometer a probe board carries: a garbled field, not a drop
MAX_SENTENCE_BYTES: Final = 82  # NMEA's limit; keeps a garbage stream from growing a line buffer
_DECIMAL: Final = re.compile(r"-?[0-9]{1,6}(\.[0-9]{1,4})?", re.ASCII)


def checksum(body: str) -> str:
    """Return the two-hex-digit XOR checksum of the text between ``$`` and ``*``."""
    value = 0
    for byte in body.encode("ascii"):
        value ^= byte
    return f"{value:02X}"


def frame(body: str) -> bytes:
    """Wrap a sentence body (``TYPE,fields``) into a complete, terminated sentence."""
    return f"${body}*{checksum(body)}\r\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class TemperatureSentence:
    """``$CCTMP,<sensor>,<celsius>,<status>``: one probe sample."""

    sensor: str
    celsius: float
    status: str = "OK"

    def encode(self) -> bytes:
        return frame(f"CCTMP,{self.sensor},{self.celsius:.2f},{self.status}")


@dataclass(frozen=True, slots=True)
class HeartbeatSentence:
    """``$CCHBT,<uptime_s>,<firmware_version>,<supply_mV>``: the board is alive."""

    uptime_s: int
    firmware_version: str
    supply_mv: int

    def encode(self) -> bytes:
        return frame(f"CCHBT,{self.uptime_s},{self.firmware_version},{self.supply_mv}")


@dataclass(frozen=True, slots=True)
class CommandSentence:
    """``$CCCMD,<name>,<argument>``: a command from the agent to the board (e.g. RATE,1000)."""

    name: str
    argument: str

    def encode(self) -> bytes:
        return frame(f"CCCMD,{self.name},{self.argument}")


@dataclass(frozen=True, slots=True)
class AckSentence:
    """``$CCACK,<name>,<argument>``: the board confirms a command."""

    name: str
    argument: str

    def encode(self) -> bytes:
        return frame(f"CCACK,{self.name},{self.argument}")


@dataclass(frozen=True, slots=True)
class ClockSentence:
    """``$CCTIM,<epoch_ms>``: the board's clock (UTC epoch ms), sent just before a tick's CCTMP burst.

    A board with a clock (or the simulator running faster than real time) sends
    it so the agent stamps the following samples with the board's time.
    """

    epoch_ms: int

    def encode(self) -> bytes:
        return frame(f"CCTIM,{self.epoch_ms}")


@dataclass(frozen=True, slots=True)
class LidSentence:
    """``$CCLID,<OPEN|CLOSED>``: the lid switch wired to the probe board changed state."""

    state: str

    def encode(self) -> bytes:
        return frame(f"CCLID,{self.state}")


@dataclass(frozen=True, slots=True)
class TiltSentence:
    """``$CCTLT,<tilt_deg>,<shock_g>``: the board's accelerometer after a tick's burst.

    ``tilt_deg`` is the shipper's axis from vertical (0 upright, 90 on its side, 180
    upside down); ``shock_g`` the largest acceleration beyond gravity since the last CCTLT.
    """

    tilt_deg: float
    shock_g: float

    def encode(self) -> bytes:
        return frame(f"CCTLT,{self.tilt_deg:.1f},{self.shock_g:.2f}")


Sentence = (
    TemperatureSentence | HeartbeatSentence | CommandSentence | AckSentence | ClockSentence | LidSentence | TiltSentence
)


def _sensor_name(raw: str) -> str:
    # the sensor becomes a telemetry field and a topic level: the same rule as every other id
    if not valid_identifier(raw):
        raise SentenceError(f"sensor name {raw!r} is not 1-64 of [A-Za-z0-9_.-] starting with a letter or digit")
    return raw


def _integer(raw: str, what: str) -> int:
    # decimal digits with an optional '-': int() would also take ' 5', '+5' and '1_000', which no board sends
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise SentenceError(f"{what} {raw!r} is not an integer")
    return int(raw)


def _count(raw: str, what: str) -> int:
    value = _integer(raw, what)
    if value < 0:
        raise SentenceError(f"{what} {raw!r} is negative")
    return value


def _decimal(raw: str, what: str, low: float, high: float) -> float:
    # plain decimals only: float() would also take 'nan', '1e3', ' 5' and '1_0', which no board sends
    if _DECIMAL.fullmatch(raw) is None:
        raise SentenceError(f"{what} {raw!r} is not a decimal number")
    value = float(raw)
    if not low <= value <= high:
        raise SentenceError(f"{what} {raw!r} is not between {low:g} and {high:g}")
    return value


def _tilt(fields: list[str]) -> TiltSentence:
    if len(fields) != 2:
        raise SentenceError(f"CCTLT needs 2 fields, got {len(fields)}")
    tilt = _decimal(fields[0], "CCTLT tilt", 0.0, 180.0)
    return TiltSentence(tilt, _decimal(fields[1], "CCTLT shock", 0.0, MAX_SHOCK_G))


def parse_sentence(line: bytes) -> Sentence:
    """Decode one line (with or without its ``\\r\\n``) into a sentence.

    Total: any bytes give a sentence or a SentenceError naming what is wrong (framing,
    checksum, type or field).
    """
    if len(line) > MAX_SENTENCE_BYTES + 2:
        raise SentenceError(f"line of {len(line)} bytes is longer than {MAX_SENTENCE_BYTES}")
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SentenceError("line contains non-ASCII bytes") from None
    if not text.startswith("$"):
        raise SentenceError(f"line does not start with '$': {text[:20]!r}")
    body, star, given = text[1:].rpartition("*")
    if not star or len(given) != 2:
        raise SentenceError(f"line has no '*HH' checksum: {text[:40]!r}")
    expected = checksum(body)
    if given.upper() != expected:
        raise SentenceError(f"checksum mismatch: line says {given}, content gives {expected}")
    kind, *fields = body.split(",")
    if kind == "CCTMP":
        if len(fields) != 3:
            raise SentenceError(f"CCTMP needs 3 fields, got {len(fields)}")
        sensor, raw_value, status = fields
        if status not in PROBE_STATUSES:
            raise SentenceError(f"CCTMP status {status!r} is not one of {sorted(PROBE_STATUSES)}")
        try:
            celsius = float(raw_value)
        except ValueError:
            raise SentenceError(f"CCTMP temperature {raw_value!r} is not a number") from None
        if not math.isfinite(celsius):
            raise SentenceError(f"CCTMP temperature {raw_value!r} is not finite")
        return TemperatureSentence(_sensor_name(sensor), celsius, status)
    if kind == "CCHBT":
        if len(fields) != 3:
            raise SentenceError(f"CCHBT needs 3 fields, got {len(fields)}")
        uptime, version, supply = fields
        return HeartbeatSentence(_count(uptime, "uptime"), version, _count(supply, "supply mV"))
    if kind in ("CCCMD", "CCACK"):
        if len(fields) != 2:
            raise SentenceError(f"{kind} needs 2 fields, got {len(fields)}")
        cls = CommandSentence if kind == "CCCMD" else AckSentence
        return cls(fields[0], fields[1])
    if kind == "CCTIM":
        if len(fields) != 1:
            raise SentenceError(f"CCTIM needs 1 field, got {len(fields)}")
        epoch_ms = _integer(fields[0], "clock epoch ms")
        if not 0 < epoch_ms < 2**53:
            raise SentenceError(f"CCTIM clock {epoch_ms} is not a plausible epoch millisecond")
        return ClockSentence(epoch_ms)
    if kind == "CCLID":
        if len(fields) != 1 or fields[0] not in LID_STATES:
            raise SentenceError(f"CCLID needs one field, OPEN or CLOSED, got {fields!r}")
        return LidSentence(fields[0])
    if kind == "CCTLT":
        return _tilt(fields)
    raise SentenceError(f"unknown sentence type {kind!r}")
