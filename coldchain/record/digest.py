"""The SHA-256 a shipment report carries: a canonical serialisation of the data it rests on.

Anyone can recompute it from the records in InfluxDB (docs/queries.md shows how),
so a later reader can check that neither the report nor the data was altered.

Canonical serialisation, version 1 — UTF-8 text, one JSON array per line, each line
ended by ``\\n``, JSON written compactly (no spaces), non-ASCII escaped as ``\\uXXXX``:

1. ``["coldchain-report-data",1,SUBJECT,START_MS,END_MS]`` — what the report covers;
2. one ``["T",CRATE,SENSOR,TS_MS,VALUE,SEQ]`` per reading, sorted by crate, sensor, time;
3. one ``["F",CRATE,SENSOR,TS_MS,FAULT,SEQ]`` per probe fault (a reading the probe could not
   take: ``OPEN``, ``SHORT``, ``RANGE``), sorted by crate, sensor, time;
   a reading or fault whose time the crate corrected ends with its flag, one more item:
   ``["T",CRATE,SENSOR,TS_MS,VALUE,SEQ,"ts_corrected"]`` (or ``"ts_uncertain"``), so a record
   without such readings hashes as it did before the flags existed;
4. one ``["A",TS_MS,CRATE,RULE,SENSOR,SEVERITY,STATE,VALUE,THRESHOLD,SEQ,ALARM_ID,BY,NOTE]`` per
   alarm transition, sorted by time, crate, rule, sensor, state;
5. one ``["G",TS_MS,CRATE,FIRST_SEQ,LAST_SEQ,STATE]`` per data gap, sorted by time, crate.

Temperatures are strings with exactly four decimals (``"-162.3100"``: the same in
every language, unlike float printing); seqs and times are integers; anything
missing is ``null``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Final

__all__ = ["FORMAT_VERSION", "AlarmFact", "FaultFact", "GapFact", "ReadingFact", "canonical_lines", "data_digest"]

FORMAT_VERSION: Final = 1

ReadingFact = tuple[str, str, int, float, int | None, str | None]  # crate, sensor, ts_ms, value_c, seq, ts_flag
FaultFact = tuple[str, str, int, str, int | None, str | None]  # crate, sensor, ts_ms, fault, seq, ts_flag
AlarmFact = tuple[
    int, str, str, str, str, str, float | None, float | None, int | None, str | None, str | None, str | None
]  # ts_ms, crate, rule, sensor, severity, state, value_c, threshold_c, seq, alarm_id, by, note
GapFact = tuple[int, str, int | None, int | None, str | None]  # ts_ms, crate, first_seq, last_seq, state


def _c(value: float | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def _flag(ts_flag: str | None) -> list[str]:
    """The item a reading whose time was corrected adds to its line: none for the others, as before the flags."""
    return [] if ts_flag is None else [ts_flag]


def _line(items: list[object]) -> str:
    return json.dumps(items, ensure_ascii=True, separators=(",", ":")) + "\n"


def canonical_lines(
    subject: str,
    start_ms: int,
    end_ms: int,
    readings: Iterable[ReadingFact],
    *,
    faults: Iterable[FaultFact] = (),
    alarms: Iterable[AlarmFact] = (),
    gaps: Iterable[GapFact] = (),
) -> Iterable[str]:
    """The lines of the canonical serialisation, in order."""
    yield _line(["coldchain-report-data", FORMAT_VERSION, subject, start_ms, end_ms])
    for crate, sensor, ts, value, seq, flag in sorted(readings, key=lambda r: (r[0], r[1], r[2])):
        yield _line(["T", crate, sensor, ts, _c(value), seq, *_flag(flag)])
    for crate, sensor, ts, fault, seq, flag in sorted(faults, key=lambda f: (f[0], f[1], f[2])):
        yield _line(["F", crate, sensor, ts, fault, seq, *_flag(flag)])
    for a in sorted(alarms, key=lambda a: (a[0], a[1], a[2], a[3], a[5])):
        yield _line(["A", a[0], a[1], a[2], a[3], a[4], a[5], _c(a[6]), _c(a[7]), a[8], a[9], a[10], a[11]])
    for ts, crate, first, last, state in sorted(gaps, key=lambda g: (g[0], g[1])):
        yield _line(["G", ts, crate, first, last, state])


def data_digest(
    subject: str,
    start_ms: int,
    end_ms: int,
    readings: Iterable[ReadingFact],
    *,
    faults: Iterable[FaultFact] = (),
    alarms: Iterable[AlarmFact] = (),
    gaps: Iterable[GapFact] = (),
) -> str:
    """Hex SHA-256 of the canonical serialisation."""
    digest = hashlib.sha256()
    for line in canonical_lines(subject, start_ms, end_ms, readings, faults=faults, alarms=alarms, gaps=gaps):
        digest.update(line.encode("ascii"))
    return digest.hexdigest()
