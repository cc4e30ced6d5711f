"""Reading the record back: InfluxQL over HTTP for 1.x servers, Flux through influxdb-client for v2.

Both readers return the same rows; every failure becomes an ``InfluxReadError``
naming the server and what to check. Settings: ``cli.influx_settings``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters.secrets import SecretError, read_secret
from cli.influx_settings import InfluxSettings
from coldchain.wire import TS_CORRECTED, TS_UNCERTAIN

__all__ = [
    "AlarmRow",
    "FaultRow",
    "GapRow",
    "InfluxReadError",
    "Reader",
    "ReadingRow",
    "ReleaseRow",
    "StoredPoint",
    "V1Reader",
    "fetch_readings",
    "open_reader",
    "shipment_details",
]

CHUNK_MS = 6 * 3_600_000  # one query per six hours of data keeps each answer small and feeds the progress line
TIMEOUT_S = 30
StoredPoint = tuple[int, dict[str, Any]]  # a point's time (epoch ms) and its fields and tags


class InfluxReadError(Exception):
    """InfluxDB cannot be read: the message names the server and what to check."""


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One stored reading."""

    ts_ms: int
    crate: str
    sensor: str
    value_c: float
    seq: int | None
    profile: str | None
    shipment: str | None = None  # the tag: the shipment the crate was assigned to when the gateway stored it
    ts_flag: str | None = None  # ``ts_corrected`` or ``ts_uncertain``: taken while the crate's clock was unset


@dataclass(frozen=True, slots=True)
class FaultRow:
    """A reading the probe could not take (``OPEN``, ``SHORT``, ``RANGE``): the temperature is unknown."""

    ts_ms: int
    crate: str
    sensor: str
    fault: str
    seq: int | None
    ts_flag: str | None = None  # ``ts_corrected`` or ``ts_uncertain``: taken while the crate's clock was unset


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One stored alarm transition (acknowledgements carry ``by`` and ``note``, or ``acknowledged_by`` in older
    records; a raising point carries ``escalated_ts`` once escalated; older gateways wrote an escalation as a
    point of its own, ``change`` ``escalated`` with state ``active``)."""

    ts_ms: int
    crate: str
    rule: str
    sensor: str
    severity: str
    state: str
    value_c: float | None
    threshold_c: float | None
    seq: int | None
    alarm_id: str | None
    by: str | None
    note: str | None
    change: str | None = None
    escalated_ts: int | None = None  # when the gateway escalated the alarm this point raised

    @property
    def transition(self) -> str:
        """The state; ``escalated`` for an escalation an older gateway wrote as a point of its own."""
        return "escalated" if "escalated" in (self.change, self.state) else self.state


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """A QA release decision (measurement ``release``) on the data whose report hash is ``sha256``."""

    ts_ms: int
    by: str
    decision: str
    note: str
    sha256: str
    verdict: str | None


@dataclass(frozen=True, slots=True)
class GapRow:
    """Messages of a crate that did not arrive: seq ``first_seq`` to ``last_seq``.

    ``state`` is the gateway's: ``open``, ``closed`` (the late messages arrived after all)
    or ``abandoned``; ``still_missing`` how many have not arrived.
    """

    ts_ms: int
    crate: str
    first_seq: int | None
    last_seq: int | None
    state: str | None = None
    still_missing: int | None = None
    lost: int | None = None  # seqs the crate declared gone for good

    @property
    def missing(self) -> int | None:
        """How many messages are still missing (the whole span when the gateway does not say)."""
        if self.still_missing is not None:
            return self.still_missing
        if self.first_seq is None or self.last_seq is None:
            return None
        return self.last_seq - self.first_seq + 1


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


def _secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return read_secret(path)
    except SecretError as exc:
        raise InfluxReadError(f"the InfluxDB {what}: {exc}") from None


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


def _optional(row: Mapping[str, Any], key: str, kind: type) -> Any:
    value = row.get(key)
    # Flux answers an absent field of a pivoted row with an empty string: the same as missing
    return None if value is None or value == "" else kind(value)


def _ts_flag(row: Mapping[str, Any]) -> str | None:
    """Which time flag a reading's row carries (the gateway writes at most one, only as true)."""
    # Flux answers an absent field with an empty string, InfluxQL with null: only true sets a flag
    return TS_UNCERTAIN if row.get(TS_UNCERTAIN) is True else TS_CORRECTED if row.get(TS_CORRECTED) is True else None


def reading_row(row: Mapping[str, Any], ts_ms: int) -> ReadingRow | FaultRow:
    """A reading, or a fault when the row has no value, from a flattened row (either API)."""
    seq, flag = _optional(row, "seq", int), _ts_flag(row)
    if row.get("value_c") is None:
        fault = str(row.get("fault") or "unknown")
        return FaultRow(ts_ms, str(row.get("crate")), str(row.get("sensor")), fault, seq, flag)
    profile, shipment = _optional(row, "profile", str), _optional(row, "shipment", str)
    return ReadingRow(
        ts_ms, str(row.get("crate")), str(row.get("sensor")), float(row["value_c"]), seq, profile, shipment, flag
    )


def alarm_row(row: Mapping[str, Any], ts_ms: int) -> AlarmRow:
    """An alarm row from a flattened InfluxDB row (either API)."""
    return AlarmRow(
        ts_ms=ts_ms,
        crate=str(row.get("crate")),
        rule=str(row.get("rule")),
        sensor=str(row.get("sensor")),
        severity=str(row.get("severity")),
        state=str(row.get("state")),
        value_c=_optional(row, "value_c", float),
        threshold_c=_optional(row, "threshold_c", float),
        seq=_optional(row, "seq", int),
        alarm_id=_optional(row, "alarm_id", str) or _optional(row, "id", str),
        by=_optional(row, "by", str) or _optional(row, "acknowledged_by", str),
        note=_optional(row, "note", str),
        change=_optional(row, "change", str),
        escalated_ts=_optional(row, "escalated_ts", int),
    )


def release_row(row: Mapping[str, Any], ts_ms: int) -> ReleaseRow:
    """A release decision from a flattened InfluxDB row (either API)."""
    return ReleaseRow(
        ts_ms,
        str(row.get("by") or ""),
        str(row.get("decision") or ""),
        str(row.get("note") or ""),
        str(row.get("sha256") or ""),
        _optional(row, "verdict", str),
    )


def gap_row(row: Mapping[str, Any], ts_ms: int) -> GapRow:
    """A gap row; the seq bounds are read from the first of the field names the gateway may use."""
    first = next((row[k] for k in ("first_seq", "first_missing", "first") if row.get(k) is not None), None)
    last = next((row[k] for k in ("last_seq", "last_missing", "last") if row.get(k) is not None), None)
    return GapRow(
        ts_ms,
        str(row.get("crate")),
        None if first is None else int(first),
        None if last is None else int(last),
        _optional(row, "state", str),
        _optional(row, "missing", int),
        _optional(row, "lost", int),
    )


SHIPMENT_DETAILS = ("origin", "destination", "product")


def shipment_details(row: Mapping[str, Any]) -> dict[str, str]:
    """origin, destination and product of a ``shipment`` row (either API), those it holds."""
    return {key: str(row[key]) for key in SHIPMENT_DETAILS if _optional(row, key, str) is not None}


class V1Reader:
    """InfluxQL over ``/query`` of an InfluxDB 1.x server (stdlib HTTP, no client library needed)."""

    def __init__(self, settings: InfluxSettings, password: str | None = None) -> None:
        """``password``: given by a caller that read it already (the board), else read from ``password_file``."""
        self.settings = settings
        self._password = password if password is not None else _secret(settings.password_file, "password")

    def _request(self, q: str) -> dict[str, Any]:
        s = self.settings
        params = {"q": q, "db": s.database, "epoch": "ms"}
        if s.retention_policy:
            params["rp"] = s.retention_policy
        request = urllib.request.Request(  # noqa: S310 (the operator's own InfluxDB URL)
            f"{s.url.rstrip('/')}/query", data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        if s.username is not None:
            token = base64.b64encode(f"{s.username}:{self._password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise InfluxReadError(
                    f"{s.where} refused the credentials{f' of {s.username}' if s.username else ''} (HTTP {exc.code}): "
                    "check --username/--password-file (or [influxdb] username/password_file of --config)"
                ) from None
            hint = " (a v2-only server? use --api v2)" if exc.code == 404 else ""
            raise InfluxReadError(f"{s.where} answered HTTP {exc.code} {exc.reason}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InfluxReadError(
                f"cannot reach InfluxDB at {s.url} ({reason}): check that influxd runs "
                "(systemctl status influxdb) and that --influx-url (or [influxdb] url of --config) names it"
            ) from None
        except ValueError as exc:
            raise InfluxReadError(f"{s.url} did not answer with InfluxDB JSON ({exc}): is it an InfluxDB?") from None
        return body

    def _series(self, q: str) -> list[dict[str, Any]]:
        result = self._request(q)["results"][0]
        if "error" in result:
            error = str(result["error"])
            if error.startswith("database not found"):
                raise InfluxReadError(
                    f"database {self.settings.database!r} does not exist at {self.settings.url}: "
                    "check --database (or [influxdb] database of --config)"
                )
            raise InfluxReadError(f"{self.settings.where} rejected the query: {error}")
        if result.get("partial"):
            raise InfluxReadError(f"{self.settings.where} truncated the answer (max-row-limit): narrow the window")
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
        from cli.influx_flux import V2Reader  # noqa: PLC0415

        return V2Reader(settings, _secret(settings.token_file, "token") or "")
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
