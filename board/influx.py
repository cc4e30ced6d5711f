"""Reads a crate's temperature history from InfluxDB 1.x (InfluxQL over HTTP) for the chart."""

from __future__ import annotations

import math
from typing import Any

import aiohttp

from board.chart import Bucket
from board.config import BoardInfluxSettings
from coldchain.topics import valid_identifier

__all__ = ["HistoryError", "bucket_ms_for", "query", "read_history", "write_point"]


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


async def query(session: aiohttp.ClientSession, settings: BoardInfluxSettings, q: str) -> dict[str, Any]:
    """InfluxQL ``q`` asked of the board's InfluxDB (times in epoch ms): its answer, or HistoryError saying why not."""
    params = {"db": settings.database, "q": q, "epoch": "ms"}
    auth = aiohttp.BasicAuth(settings.username, settings.password or "") if settings.username else None
    try:
        async with session.get(
            f"{settings.url}/query", params=params, auth=auth, timeout=aiohttp.ClientTimeout(total=settings.timeout_s)
        ) as response:
            if response.status == 401:
                raise HistoryError(f"InfluxDB at {settings.url} refused the board's credentials (influxdb.username)")
            if response.status == 404 or response.status >= 500:
                raise HistoryError(f"InfluxDB at {settings.url} answered HTTP {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise HistoryError(
            f"InfluxDB at {settings.url} cannot be reached ({exc.__class__.__name__}): is influxd running there?"
        ) from None
    if not isinstance(body, dict):
        raise HistoryError(f"InfluxDB at {settings.url} sent something that is not a query result")
    if response.status >= 400:
        raise HistoryError(f"InfluxDB refused the query: {body.get('error', response.status)}")
    return body


async def read_history(
    session: aiohttp.ClientSession, settings: BoardInfluxSettings, crate: str, start_ms: int, end_ms: int
) -> tuple[list[Bucket], int]:
    """Highest and lowest reading per sensor per bucket in [start, end), and the bucket width."""
    if not valid_identifier(crate):
        raise HistoryError(f"{crate!r} is not a crate id")
    bucket_ms = bucket_ms_for(end_ms - start_ms, settings.max_points)
    body = await query(session, settings, _query(crate, start_ms, end_ms, bucket_ms))
    return _buckets(body, settings), bucket_ms


async def write_point(session: aiohttp.ClientSession, settings: BoardInfluxSettings, line: str) -> None:
    """Write one line of line protocol (ms precision) through ``/write``; HistoryError saying why it was not stored."""
    auth = aiohttp.BasicAuth(settings.username, settings.password or "") if settings.username else None
    params = {"db": settings.database, "precision": "ms"}
    try:
        async with session.post(
            f"{settings.url}/write",
            params=params,
            data=line.encode(),
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
        ) as response:
            if response.status == 204:
                return
            text = (await response.text())[:300]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HistoryError(
            f"InfluxDB at {settings.url} cannot be reached ({exc.__class__.__name__}): is influxd running there?"
        ) from None
    if response.status in (401, 403):
        raise HistoryError(
            f"InfluxDB at {settings.url} refused to store it (HTTP {response.status}): the board's influxdb.username "
            "needs write on the database for release decisions"
        )
    raise HistoryError(f"InfluxDB at {settings.url} did not store it: HTTP {response.status} {text}")
