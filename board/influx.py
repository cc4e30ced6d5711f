"""The board's InfluxDB 1.x: a crate's temperature history for the chart, and the queries and writes of the
other pages, through the shared reader and writer (``adapters.influx_read``, ``adapters.influx_write``)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from adapters.influx_errors import InfluxAuthError, InfluxError, InfluxNotFoundError, InfluxUnreachableError
from adapters.influx_read import V1Reader
from adapters.influx_write import write_once
from board.chart import Bucket
from board.config import BoardInfluxSettings
from coldchain.errors import StoreError
from coldchain.topics import valid_identifier

__all__ = ["HistoryError", "bucket_ms_for", "influx_problem", "query", "read_history", "write_point"]


class HistoryError(Exception):
    """The history could not be read; the message says which server and what to check."""


def bucket_ms_for(window_ms: int, max_points: int) -> int:
    """Bucket width (whole seconds, at least 1 s) so the window holds at most ``max_points`` buckets."""
    return max(1000, math.ceil(window_ms / max_points / 1000) * 1000)


def _query(crate: str, start_ms: int, end_ms: int, bucket_ms: int) -> str:
    # crate is a checked identifier ([A-Za-z0-9_.-]), so it cannot close the quoted literal
    select = 'SELECT max("value_c") AS hi, min("value_c") AS lo FROM "temperature" '
    return (
        select + f"WHERE \"crate\" = '{crate}' AND time >= {start_ms}ms AND time < {end_ms}ms "
        f'GROUP BY time({bucket_ms // 1000}s), "sensor" fill(none)'
    )


def _buckets(body: dict[str, Any], settings: BoardInfluxSettings) -> list[Bucket]:
    out: list[Bucket] = []
    for result in body.get("results", []):
        if "error" in result:
            if str(result["error"]).startswith("database not found"):
                raise HistoryError(
                    f"InfluxDB at {settings.url} has no database {settings.database!r}: check influxdb.database, "
                    "or the gateway has not stored anything yet"
                )
            raise HistoryError(f"InfluxDB refused the query: {result['error']}")
        for series in result.get("series", []):
            sensor = series.get("tags", {}).get("sensor", "?")
            columns = series["columns"]
            t_i, hi_i, lo_i = columns.index("time"), columns.index("hi"), columns.index("lo")
            out.extend(
                Bucket(sensor, int(row[t_i]), float(row[hi_i]), float(row[lo_i]))
                for row in series["values"]
                if row[hi_i] is not None and row[lo_i] is not None
            )
    return out


def influx_problem(exc: InfluxError) -> str:
    """``exc`` and what to check in the board's configuration."""
    if isinstance(exc, InfluxAuthError):
        return f"{exc}: check influxdb.username and password_file"
    if isinstance(exc, InfluxNotFoundError):
        return f"{exc}: check influxdb.url and influxdb.database"
    if isinstance(exc, InfluxUnreachableError):
        return f"{exc}: is influxd running there?"
    return str(exc)


async def query(reader: V1Reader, q: str) -> dict[str, Any]:
    """InfluxQL ``q`` asked of the board's InfluxDB (times in epoch ms): its answer, or HistoryError saying why not."""
    try:
        # the reader blocks: a thread of its own keeps the pages and the event stream moving meanwhile
        return await asyncio.to_thread(reader.query, q)
    except InfluxError as exc:
        raise HistoryError(influx_problem(exc)) from None


async def read_history(
    reader: V1Reader, settings: BoardInfluxSettings, crate: str, start_ms: int, end_ms: int
) -> tuple[list[Bucket], int]:
    """Highest and lowest reading per sensor per bucket in [start, end), and the bucket width."""
    if not valid_identifier(crate):
        raise HistoryError(f"{crate!r} is not a crate id")
    bucket_ms = bucket_ms_for(end_ms - start_ms, settings.max_points)
    body = await query(reader, _query(crate, start_ms, end_ms, bucket_ms))
    return _buckets(body, settings), bucket_ms


async def write_point(settings: BoardInfluxSettings, line: str) -> None:
    """Write one line of line protocol (ms precision); HistoryError saying why it was not stored."""
    try:
        await asyncio.to_thread(write_once, settings, line.encode())
    except (StoreError, OSError) as exc:
        if isinstance(exc.__cause__, InfluxAuthError):
            raise HistoryError(
                f"{exc}: the board's influxdb.username needs write on the database for release decisions"
            ) from None
        raise HistoryError(str(exc)) from None
