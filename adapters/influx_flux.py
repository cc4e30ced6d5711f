"""Reading the record from a server that speaks the v2 API (InfluxDB 2.x, 3.x, Cloud): Flux via influxdb-client.

The rows are the same as the InfluxQL reader's; errors are classified as the writer's (``adapters.influx_v2``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import urllib3
from influxdb_client.rest import ApiException

from adapters.influx_errors import InfluxError
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
from adapters.influx_v2 import open_client, v2_error
from adapters.secrets import SecretError
from coldchain.settings.influx import InfluxSettings

__all__ = ["V2Reader"]

EPOCH = "1970-01-01T00:00:00Z"


def _s(value: str) -> str:
    """A Flux string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def _t(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _any(column: str, values: list[str]) -> str:
    return "(" + " or ".join(f"r.{column} == {_s(v)}" for v in values) + ")"


class V2Reader:
    """Flux queries through influxdb-client's query API."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        try:
            self._client = open_client(settings)
        except SecretError as exc:
            raise InfluxError(f"the InfluxDB token: {exc}") from None

    def _records(self, flux: str) -> Iterator[dict[str, Any]]:
        try:
            tables = self._client.query_api().query(flux, org=self.settings.org)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise v2_error(self.settings, exc, "the query") from None
        for table in tables:
            for record in table.records:
                yield record.values

    def _from(self, start: str, stop: str | None = None) -> str:
        stop_arg = f", stop: {stop}" if stop else ""
        return f"from(bucket: {_s(self.settings.bucket or '')})\n  |> range(start: {start}{stop_arg})\n"

    def _tagged(self, tags: Mapping[str, str]) -> str:
        return "".join(f" and r.{k} == {_s(v)}" for k, v in tags.items())

    def readings(self, tags: Mapping[str, str], start_ms: int, end_ms: int) -> list[ReadingRow | FaultRow]:
        """Stored readings (and probe faults) with the given tags in [start_ms, end_ms), in time order."""
        flux = (
            self._from(_t(start_ms), _t(end_ms))
            + f'  |> filter(fn: (r) => r._measurement == "temperature"{self._tagged(tags)})\n'
            + '  |> filter(fn: (r) => r._field == "value_c" or r._field == "seq" or r._field == "fault"'
            + ' or r._field == "ts_corrected" or r._field == "ts_uncertain")\n'
            + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            + '  |> group()\n  |> sort(columns: ["_time"])\n'
        )
        return [reading_row(r, _ms(r["_time"])) for r in self._records(flux)]

    def extent(self, tags: Mapping[str, str]) -> tuple[int, int] | None:
        """Times of the first and last stored reading with these tags (None: there is none)."""
        base = (
            self._from(EPOCH)
            + f'  |> filter(fn: (r) => r._measurement == "temperature" and r._field == "seq"{self._tagged(tags)})\n'
            + '  |> group()\n  |> keep(columns: ["_time"])\n'
        )
        first = list(self._records(base + '  |> sort(columns: ["_time"])\n  |> limit(n: 1)\n'))
        last = list(self._records(base + '  |> sort(columns: ["_time"], desc: true)\n  |> limit(n: 1)\n'))
        if not first or not last:
            return None
        return _ms(first[0]["_time"]), _ms(last[0]["_time"])

    def points(self, measurement: str, crates: list[str], start_ms: int, end_ms: int | None) -> list[StoredPoint]:
        """(time, row) of each ``measurement`` point of these crates in [start, end) (end None: open), by time."""
        flux = (
            self._from(_t(start_ms), None if end_ms is None else _t(end_ms))
            + f"  |> filter(fn: (r) => r._measurement == {_s(measurement)} and {_any('crate', crates)})\n"
            + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            + '  |> group()\n  |> sort(columns: ["_time"])\n'
        )
        return [(_ms(r["_time"]), r) for r in self._records(flux)]

    def alarms(self, crates: list[str], start_ms: int, end_ms: int) -> list[AlarmRow]:
        """Every alarm transition of these crates in the window, in time order."""
        return [alarm_row(r, ts) for ts, r in self.points("alarm", crates, start_ms, end_ms)]

    def gaps(self, crates: list[str], start_ms: int, end_ms: int) -> list[GapRow]:
        """Recorded data gaps of these crates in the window."""
        return [gap_row(r, ts) for ts, r in self.points("gap", crates, start_ms, end_ms)]

    def crates_where(self, tag: str, value: str) -> list[str]:
        """Crates whose readings carry ``tag = value`` (e.g. a shipment id)."""
        flux = (
            self._from(EPOCH)
            + f'  |> filter(fn: (r) => r._measurement == "temperature" and r.{tag} == {_s(value)})\n'
            + '  |> keep(columns: ["crate"])\n  |> group()\n  |> distinct(column: "crate")\n'
        )
        return sorted({str(r["_value"]) for r in self._records(flux)})

    def shipment(self, shipment: str) -> dict[str, str]:
        """The shipment's record as the gateway last wrote it (measurement ``shipment``); empty when none."""
        flux = (
            self._from(EPOCH)
            + f'  |> filter(fn: (r) => r._measurement == "shipment" and r.shipment == {_s(shipment)})\n'
            + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            + '  |> group()\n  |> sort(columns: ["_time"], desc: true)\n  |> limit(n: 1)\n'
        )
        rows = list(self._records(flux))
        return shipment_details(rows[0]) if rows else {}

    def releases(self, tag: str, subject: str) -> list[ReleaseRow]:
        """Every release decision on ``subject`` (tag ``shipment`` or ``crate``), oldest first."""
        flux = (
            self._from(EPOCH)
            + f'  |> filter(fn: (r) => r._measurement == "release" and r.{tag} == {_s(subject)})\n'
            + '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            + '  |> group()\n  |> sort(columns: ["_time"])\n'
        )
        return [release_row(r, _ms(r["_time"])) for r in self._records(flux)]
