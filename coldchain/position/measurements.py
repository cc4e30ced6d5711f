"""A crate's position and orientation events, checked and turned into InfluxDB points.

The agent publishes ``position`` and ``gps_no_fix`` (a GPS receiver), ``orientation`` and
``shock`` (an accelerometer) on ``coldchain/v1/crates/{crate}/events`` (README, "MQTT topics
and payloads"). The gateway stores them as measurements ``position``, ``orientation`` and
``shock`` (README, "InfluxDB measurements"). Total: any event body gives a point or a
``WireFormatError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from coldchain.errors import WireFormatError
from coldchain.record.lineprotocol import FieldValue, point
from coldchain.sentences import MAX_SHOCK_G

__all__ = ["POSITION_EVENTS", "position_point"]

POSITION_EVENTS: Final = frozenset({"position", "gps_no_fix", "orientation", "shock"})
MAX_SATELLITES: Final = 255  # GGA has two digits; a combined GNSS receiver may track more, never this many
MAX_SPEED_KMH: Final = 2_000.0  # faster than any aircraft a crate flies in: a broken receiver


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = body.get(key)
    # bool is an int to Python, never a coordinate to a person
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WireFormatError("schema", f"{key!r} must be a number, got {type(value).__name__}")
    if not low <= value <= high:
        raise WireFormatError("schema", f"{key!r} {value} is not between {low:g} and {high:g}")
    return float(value)


def _optional(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    return None if body.get(key) is None else _number(body, key, low, high)


def _satellites(body: Mapping[str, Any]) -> int | None:
    value = body.get("satellites")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SATELLITES:
        raise WireFormatError("schema", f"'satellites' must be a count 0-{MAX_SATELLITES}, got {value!r}"[:200])
    return value


def position_point(crate: str, event: str, body: Mapping[str, Any], ts_ms: int) -> str:
    """The line-protocol point for one of ``POSITION_EVENTS`` of ``crate`` at ``ts_ms``."""
    fields: dict[str, FieldValue] = {}
    if event in ("position", "gps_no_fix"):
        measurement = "position"
        fields["fix"] = event == "position"
        if event == "position":
            fields["lat"] = _number(body, "lat", -90.0, 90.0)
            fields["lon"] = _number(body, "lon", -180.0, 180.0)
            speed = _optional(body, "speed_kmh", 0.0, MAX_SPEED_KMH)
            if speed is not None:
                fields["speed_kmh"] = speed
        satellites = _satellites(body)
        if satellites is not None:
            fields["satellites"] = satellites
    elif event == "orientation":
        measurement = "orientation"
        fields["tilt_deg"] = _number(body, "tilt_deg", 0.0, 180.0)
    elif event == "shock":
        measurement = "shock"
        fields["shock_g"] = _number(body, "shock_g", 0.0, MAX_SHOCK_G)
        fields["tilt_deg"] = _number(body, "tilt_deg", 0.0, 180.0)
    else:
        raise WireFormatError("schema", f"{event!r} is not a position or orientation event"[:200])
    return point(measurement, {"crate": crate}, fields, ts_ms)
