"""InfluxDB line protocol: the one place points become text, for the v1 and the v2 API alike.

A point's identity in InfluxDB is measurement + tag set + timestamp: writing the
same point again overwrites it, which is what makes a replay after a crash
create no duplicate. Timestamps here are epoch milliseconds (write precision ``ms``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = ["encode_lines", "field_value", "point", "reading_line", "series_key", "string_field"]

_MEASUREMENT_ESCAPES: Final = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY_ESCAPES: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})
_STRING_ESCAPES: Final = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": r"\n"})

FieldValue = float | int | str | bool


def string_field(text: str) -> str:
    """A string field value, quoted and escaped."""
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def field_value(value: FieldValue) -> str:
    """One field value: floats as decimals, integers with ``i``, strings quoted, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol cannot carry the float {value!r}")
        return repr(value)
    return string_field(value)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with tags sorted by key (InfluxDB's own order, the cheapest to index).

    Empty tag values are left out: InfluxDB refuses them.
    """
    parts = [measurement.translate(_MEASUREMENT_ESCAPES)]
    parts += [
        f"{key.translate(_KEY_ESCAPES)}={value.translate(_KEY_ESCAPES)}" for key, value in sorted(tags.items()) if value
    ]
    return ",".join(parts)


def point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ms: int) -> str:
    """One line of line protocol (no trailing newline). ``fields`` must not be empty."""
    if not fields:
        raise ValueError(f"a {measurement} point needs at least one field")
    body = ",".join(f"{key.translate(_KEY_ESCAPES)}={field_value(value)}" for key, value in fields.items())
    return f"{series_key(measurement, tags)} {body} {ts_ms}"


def reading_line(series: str, value_c: float, seq: int, ts_ms: int) -> str:
    """The hot path's ``temperature`` point; ``series`` from ``series_key``, ``value_c`` finite."""
    return f"{series} value_c={value_c!r},seq={seq}i {ts_ms}"


def encode_lines(lines: list[str]) -> bytes:
    """The body of a write: ``lines`` joined, as UTF-8.

    Never raises: a string UTF-8 cannot carry (a lone surrogate that slipped past a decoder) is written as
    its escape rather than stopping the writer, and with it every crate's storage.
    """
    return "\n".join(lines).encode("utf-8", "backslashreplace")
