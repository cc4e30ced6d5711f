"""One line of a GPS receiver's NMEA 0183 stream, decoded by pynmea2 into what the agent needs.

Total: any bytes give a ``GpsUpdate``, ``None`` (a valid sentence that says nothing about
the fix, e.g. satellites in view) or an ``NmeaError`` naming the problem. A receiver
without a fix sends empty or void fields; they become "no fix", never a position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pynmea2

from coldchain.position.geometry import KNOT_KMH, Position

__all__ = ["MAX_NMEA_BYTES", "GpsUpdate", "NmeaError", "read_nmea"]

MAX_NMEA_BYTES: Final = 82  # NMEA 0183's limit before CR LF


class NmeaError(ValueError):
    """A line that is not a usable NMEA sentence: framing, checksum or a malformed field."""


@dataclass(frozen=True, slots=True)
class GpsUpdate:
    """What one RMC or GGA sentence says: a fix with its position, or no fix.

    ``speed_kmh`` comes from RMC, ``satellites`` from GGA; each is None when the sentence
    does not carry it.
    """

    sentence: str  # "RMC" or "GGA"
    position: Position | None  # None: no fix
    speed_kmh: float | None = None
    satellites: int | None = None

    @property
    def fix(self) -> bool:
        """Whether the receiver has a position fix."""
        return self.position is not None


def _position(message: Any) -> Position:
    if not (message.lat and message.lon and message.lat_dir in "NS" and message.lon_dir in "EW"):
        raise NmeaError(f"{message.sentence_type} claims a fix without a position")
    try:
        return Position(float(message.latitude), float(message.longitude))
    except ValueError as exc:
        raise NmeaError(f"{message.sentence_type} position: {exc}") from None


def _count(value: object, what: str) -> int | None:
    # pynmea2 types some fields (GGA's quality is an int, or None when empty), leaves others text
    raw = "" if value is None else str(value)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise NmeaError(f"{what} {raw!r} is not a count")
    return int(raw)


def _rmc(message: Any) -> GpsUpdate:
    # NMEA 2.3 adds a mode indicator: N (no fix) even when a receiver leaves the status at A
    if message.status != "A" or getattr(message, "mode_indicator", "") == "N":
        return GpsUpdate("RMC", None)
    speed = None
    if message.spd_over_grnd not in (None, ""):  # pynmea2 gives a float (0.0 at rest) or the empty field
        try:
            knots = float(message.spd_over_grnd)
        except ValueError:
            raise NmeaError(f"RMC speed {message.spd_over_grnd!r} is not a number") from None
        if not 0.0 <= knots < 10_000.0:
            raise NmeaError(f"RMC speed {message.spd_over_grnd!r} knots is not a speed a crate travels at")
        speed = round(knots * KNOT_KMH, 1)
    return GpsUpdate("RMC", _position(message), speed_kmh=speed)


def _gga(message: Any) -> GpsUpdate:
    quality = _count(message.gps_qual, "GGA fix quality")
    satellites = _count(message.num_sats, "GGA satellites")
    if not quality:  # 0 or empty: no fix
        return GpsUpdate("GGA", None, satellites=satellites)
    return GpsUpdate("GGA", _position(message), satellites=satellites)


def read_nmea(line: bytes) -> GpsUpdate | None:
    """Decode one line; None for a well-formed sentence other than RMC and GGA."""
    if len(line) > MAX_NMEA_BYTES + 2:
        raise NmeaError(f"line of {len(line)} bytes is longer than {MAX_NMEA_BYTES}")
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise NmeaError("line contains non-ASCII bytes") from None
    try:
        # check=True: a sentence without a checksum is refused, not trusted
        message = pynmea2.parse(text, check=True)
        if isinstance(message, pynmea2.RMC):
            return _rmc(message)
        if isinstance(message, pynmea2.GGA):
            return _gga(message)
    except NmeaError:
        raise
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        # pynmea2's ParseError is a ValueError; malformed fields surface as the others on access
        raise NmeaError(f"not a usable NMEA sentence: {exc}"[:200]) from None
    return None
