"""Reading the record back: InfluxQL over HTTP for 1.x servers, Flux through influxdb-client for v2.

The one reader of every program (the people's commands, the board's pages, the private influxd of the
demo and the tests), opened from the core's ``InfluxSettings``. Both readers return the same rows
(``adapters.influx_rows``); every failure is an ``InfluxError`` of the kind ``adapters.influx_errors``
names, naming the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from adapters.influx_errors import InfluxError, InfluxNotFoundError, InfluxRefusedError
from adapters.influx_rows import (
    AlarmRow,
    FaultRow,
    GapRow,
    ReadingRow,
    ReleaseRow,
    StoredPoint,
    alarm_row,
    gap_row,
    reading_row,
    release_row,
    shipment_details,
)
from adapters.influx_v1 import V1Http
from adapters.secrets import SecretError
from coldchain.settings.influx import InfluxSettings

__all__ = ["Reader", "V1Reader", "fetch_readings", "open_reader"]

CHUNK_MS = 6 * 3_600_000  # one query per six hours of data keeps each answer small and feeds the progress line


class Reader(Protocol):
    """What the commands need from the record."""

    settings: InfluxSettings

    def readings(self, tags: Mapping[str, str], start_ms: int, end_ms: int) -> list[ReadingRow | FaultRow]: ...

    def extent(self, tags: Mapping[str, str]) -> tuple[int, int] | None: ...

    def alarms(self, crates: list[str], start_ms: int, end_ms: int) -> list[AlarmRow]: ...

    def gaps(self, crates: list[str], start_ms: int, end_ms: int) -> list[GapRow]: ...

    def crates_where(self, tag: str, value: str) -> list[str]: ...

    def points(self, measurement: str, crates: list[str], start_ms: int, end_ms: int | None) -> list[StoredPoint]: ...

    def shipment(self, shipment: str) -> dict[str, str]: ...

    def releases(self, tag: str, subject: str) -> list[ReleaseRow]: ...


def _q(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(tags: Mapping[str, str], start_ms: int | None = None, end_ms: int | None = None) -> str:
    terms = [f'"{k}" = {_q(v)}' for k, v in tags.items()]
    if start_ms is not None:
        terms.append(f"time >= {start_ms}ms")
    if end_ms is not None:
        terms.append(f"time < {end_ms}ms")
    return " AND ".join(terms)


def _select(what: str, measurement: str, where: str) -> str:
    # Values enter only as literals escaped by _q; tag keys and measurements are our own constants.
    return f'SELECT {what} FROM "{measurement}" WHERE {where} ORDER BY time ASC'  # noqa: S608


def _crates(crates: list[str]) -> str:
    return "(" + " OR ".join(f'"crate" = {_q(c)}' for c in crates) + ")"


class V1Reader:
    """InfluxQL over ``/query`` of an InfluxDB 1.x server (stdlib HTTP, no client library needed).

    Safe to share between threads: every query has a connection of its own.
    """

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        try:
            self._http = V1Http(settings, keep_alive=False)
        except SecretError as exc:
            raise InfluxError(f"the InfluxDB password: {exc}") from None

    def query(self, q: str) -> dict[str, Any]:
        """InfluxDB's answer to the InfluxQL ``q`` (times in epoch ms), one result per statement.

        InfluxError (of the kind ``adapters.influx_errors`` names) when there is none; a statement's own
        error is in its result, for the caller to judge (a board's history is empty before the first write).
        """
        s = self.settings
        params = {"q": q, "db": s.database, "epoch": "ms"}
        if s.retention_policy:
            params["rp"] = s.retention_policy
        status, text = self._http.request("POST", "/query", params)
        if status >= 300:
            raise self._http.failure(status, text, "the query")
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise InfluxError(f"{s.url} did not answer with InfluxDB JSON ({exc}): is it an InfluxDB?") from None
        if not isinstance(body, dict):
            raise InfluxError(f"InfluxDB at {s.url} sent something that is not a query result")
        return body

    def _series(self, q: str) -> list[dict[str, Any]]:
        result = self.query(q)["results"][0]
        if "error" in result:
            error = str(result["error"])
            if error.startswith("database not found"):
                raise InfluxNotFoundError(f"InfluxDB at {self.settings.url} has no database {self.settings.database!r}")
            raise InfluxRefusedError(f"InfluxDB at {self.settings.url} refused the query: {error[:300]}")
        if result.get("partial"):
            raise InfluxError(f"{self.settings.where} truncated the answer (max-row-limit): narrow the window")
        return list(result.get("series", []))

    def _rows(self, q: str) -> Iterator[dict[str, Any]]:
        for series in self._series(q):
            tags = series.get("tags") or {}
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                yield row

    def readings(self, tags: Mapping[str, str], start_ms: int, end_ms: int) -> list[ReadingRow | FaultRow]:
        """Stored readings (and probe faults) with the given tags in [start_ms, end_ms), in time order."""
        what = '"value_c", "fault", "seq", "ts_corrected", "ts_uncertain", "crate", "sensor", "profile", "shipment"'
        return [
            reading_row(r, int(r["time"]))
            for r in self._rows(_select(what, "temperature", _where(tags, start_ms, end_ms)))
        ]

    def extent(self, tags: Mapping[str, str]) -> tuple[int, int] | None:
        """Times of the first and last stored reading with these tags (None: there is none)."""
        where = _where(tags)
        # seq, not value_c: a probe fault (no value) still belongs to the record
        first = list(self._rows(_select('first("seq")', "temperature", where)))
        last = list(self._rows(_select('last("seq")', "temperature", where)))
        if not first or not last:
            return None
        return int(first[0]["time"]), int(last[0]["time"])

    def points(self, measurement: str, crates: list[str], start_ms: int, end_ms: int | None) -> list[StoredPoint]:
        """(time, row) of each ``measurement`` point of these crates in [start, end) (end None: open), by time."""
        q = _select("*", measurement, f"{_crates(crates)} AND {_where({}, start_ms, end_ms)}")
        return [(int(r["time"]), r) for r in self._rows(q)]

    def alarms(self, crates: list[str], start_ms: int, end_ms: int) -> list[AlarmRow]:
        """Every alarm transition of these crates in the window, in time order."""
        return [alarm_row(r, ts) for ts, r in self.points("alarm", crates, start_ms, end_ms)]

    def gaps(self, crates: list[str], start_ms: int, end_ms: int) -> list[GapRow]:
        """Recorded data gaps of these crates in the window."""
        return [gap_row(r, ts) for ts, r in self.points("gap", crates, start_ms, end_ms)]

    def crates_where(self, tag: str, value: str) -> list[str]:
        """Crates whose readings carry ``tag = value`` (e.g. a shipment id)."""
        q = f'SHOW TAG VALUES FROM "temperature" WITH KEY = "crate" WHERE "{tag}" = {_q(value)}'
        return sorted({str(r["value"]) for r in self._rows(q)})

    def shipment(self, shipment: str) -> dict[str, str]:
        """The shipment's record as the gateway last wrote it (measurement ``shipment``); empty when none."""
        q = f'SELECT * FROM "shipment" WHERE "shipment" = {_q(shipment)} ORDER BY time DESC LIMIT 1'  # noqa: S608
        rows = list(self._rows(q))
        return shipment_details(rows[0]) if rows else {}

    def releases(self, tag: str, subject: str) -> list[ReleaseRow]:
        """Every release decision on ``subject`` (tag ``shipment`` or ``crate``), oldest first."""
        return [release_row(r, int(r["time"])) for r in self._rows(_select("*", "release", _where({tag: subject})))]


def open_reader(settings: InfluxSettings) -> Reader:
    """The reader for the configured API."""
    if settings.api == "v2":
        # influxdb-client is loaded only for v2 servers: the 1.x path needs nothing beyond the stdlib
        from adapters.influx_flux import V2Reader  # noqa: PLC0415

        return V2Reader(settings)
    return V1Reader(settings)


def fetch_readings(
    reader: Reader, tags: Mapping[str, str], start_ms: int, end_ms: int, progress: Callable[[int, int], None]
) -> list[ReadingRow | FaultRow]:
    """All readings in the window, queried a few hours at a time; ``progress(done_ms, rows)`` after each."""
    rows: list[ReadingRow | FaultRow] = []
    cursor = start_ms
    while cursor < end_ms:
        stop = min(cursor + CHUNK_MS, end_ms)
        rows.extend(reader.readings(tags, cursor, stop))
        cursor = stop
        progress(cursor - start_ms, len(rows))
    return rows
