"""A crate's route and stance for its page: the GPS fixes over a window, and its latest orientation and shock.

The gateway stores measurements ``position`` (``fix``; ``lat``, ``lon`` only with a fix; ``speed_kmh``,
``satellites``), ``orientation`` (``tilt_deg``) and ``shock`` (``shock_g``, ``tilt_deg``), all tagged
``crate``. The track is cut into stretches at every ``fix = false`` point, so the page never draws a
line through a span where the crate did not know where it was. One request, three InfluxQL statements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from adapters.influx_read import V1Reader
from board.influx import HistoryError, query
from coldchain.topics import valid_identifier

__all__ = ["MAX_FIXES", "parse_track", "read_track", "track_queries"]

MAX_FIXES: Final = 5000  # newest points of the window: a route reported every minute for three days and more


def track_queries(crate: str, start_ms: int, end_ms: int) -> str:
    """Positions in [start, end) newest first, and the crate's latest orientation and shock ever stored."""
    # crate is a checked identifier ([A-Za-z0-9_.-]), so it cannot close the quoted literal
    mine = f"\"crate\" = '{crate}'"
    return (
        f'SELECT "fix", "lat", "lon", "speed_kmh", "satellites" FROM "position" WHERE {mine} '  # noqa: S608
        f"AND time >= {start_ms}ms AND time < {end_ms}ms ORDER BY time DESC LIMIT {MAX_FIXES}; "
        f'SELECT "tilt_deg" FROM "orientation" WHERE {mine} ORDER BY time DESC LIMIT 1; '
        f'SELECT "shock_g", "tilt_deg" FROM "shock" WHERE {mine} ORDER BY time DESC LIMIT 1'
    )


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (bool included: it is an int to Python, not a reading)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of one statement's result as column -> value."""
    out: list[dict[str, Any]] = []
    for series in result.get("series", []):
        columns = series["columns"]
        out.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
    return out


def _segments(rows: list[dict[str, Any]]) -> tuple[list[list[list[float]]], dict[str, Any] | None, bool | None]:
    """Stretches of [ts, lat, lon] in time order, the last fix with its speed and satellites, and whether the
    newest position point had a fix (None when there is none in the window)."""
    segments: list[list[list[float]]] = []
    current: list[list[float]] = []
    last: dict[str, Any] | None = None
    fix_now: bool | None = None
    for row in sorted(rows, key=lambda r: int(r["time"])):
        lat, lon = _number(row.get("lat")), _number(row.get("lon"))
        if row.get("fix") is False:
            if current:
                segments.append(current)
            current, fix_now = [], False
            continue
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue  # not a position the page could place
        ts = int(row["time"])
        current.append([ts, lat, lon])
        fix_now = True
        speed, satellites = _number(row.get("speed_kmh")), _number(row.get("satellites"))
        last = {"ts": ts, "lat": lat, "lon": lon, "speed_kmh": speed,
                "satellites": int(satellites) if satellites is not None else None}  # fmt: skip
    if current:
        segments.append(current)
    return segments, last, fix_now


def _stance(rows: list[dict[str, Any]], tipped_deg: float | None) -> dict[str, Any] | None:
    """The latest orientation: its time, tilt and whether that is upright or tipped against ``tipped_deg``
    (``unjudged`` without a limit)."""
    for row in rows:
        tilt = _number(row.get("tilt_deg"))
        if tilt is not None:
            stance = "unjudged" if tipped_deg is None else "tipped" if tilt > tipped_deg else "upright"
            return {"ts": int(row["time"]), "tilt_deg": tilt, "stance": stance}
    return None


def _shock(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest shock: its time, size and the tilt it left the crate at."""
    for row in rows:
        shock = _number(row.get("shock_g"))
        if shock is not None:
            return {"ts": int(row["time"]), "shock_g": shock, "tilt_deg": _number(row.get("tilt_deg"))}
    return None


def parse_track(body: Any, tipped_deg: float | None) -> dict[str, Any]:
    """The page's track and stance from InfluxDB's answer to ``track_queries``, the tilt judged against the
    crate's profile's limit ``tipped_deg`` (None: it sets none); HistoryError when it is not one."""
    try:
        results = body["results"]
        for result in results:
            if "error" in result and not str(result["error"]).startswith("database not found"):
                raise HistoryError(f"InfluxDB refused the track query: {str(result['error'])[:200]}")
        statements = [_rows(r) for r in results] + [[], [], []]
        positions = statements[0]
        segments, last, fix_now = _segments(positions)
        return {
            "segments": segments,
            "last": last,
            "fix": fix_now,
            "truncated": len(positions) >= MAX_FIXES,
            "orientation": _stance(statements[1], tipped_deg),
            "shock": _shock(statements[2]),
            "tipped_deg": tipped_deg,
        }
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise HistoryError(f"InfluxDB's answer is not a query result ({type(exc).__name__})") from None


async def read_track(
    reader: V1Reader,
    crate: str,
    start_ms: int,
    end_ms: int,
    *,
    tipped_deg: float | None,
) -> dict[str, Any]:
    """The crate's track over [start, end) and its latest orientation (judged against ``tipped_deg``) and shock;
    HistoryError saying why not."""
    if not valid_identifier(crate):
        raise HistoryError(f"{crate!r} is not a crate id")
    body = await query(reader, track_queries(crate, start_ms, end_ms))
    return parse_track(body, tipped_deg)
