"""The release report as JSON (everything, readings included) or CSV (the record's row, then one per probe).

The CSV's first row (``scope`` ``record``) carries the verdict of the whole record and its
reasons; each probe's row (``scope`` ``probe``) carries that probe's own verdict and reasons
(its excursions, its faults, its crate's holes), never the record's. Then, for crates that
report them, a row per phase, tilt beyond the limit and shock (``scope`` ``phase``, ``tilt``,
``shock``): the crate, its start and end, and in ``reasons`` what it was.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import asdict
from typing import Any, TextIO

from adapters.influx_rows import FaultRow, ReadingRow
from cli.report import Report
from cli.report_motion import CrateMotion
from cli.window import format_duration, iso
from coldchain.position.phases import PHASES, Area
from coldchain.record.completeness import Hole
from coldchain.record.digest import FORMAT_VERSION
from coldchain.record.stats import SensorSummary

__all__ = ["CSV_COLUMNS", "motion_rows", "report_json", "write_csv", "write_text"]


def _hole(hole: Hole) -> dict[str, Any]:
    return {
        "kind": hole.kind,
        "where": hole.where,
        "start": iso(hole.start_ms),
        "end": iso(hole.end_ms),
        "start_ms": hole.start_ms,
        "end_ms": hole.end_ms,
        "duration_s": hole.duration_ms / 1000,
        "detail": hole.detail,
    }


def _flag(row: ReadingRow | FaultRow) -> dict[str, bool]:
    """``{"ts_corrected": true}`` (or ``ts_uncertain``) for a reading whose time the crate corrected, else nothing."""
    return {} if row.ts_flag is None else {row.ts_flag: True}


def _sensor(report: Report, index: int, s: SensorSummary) -> dict[str, Any]:
    own = report.probe_verdicts[index]
    return {
        "sensor": s.sensor,
        "readings": s.count,
        "first": iso(s.first_ms),
        "last": iso(s.last_ms),
        "min_c": s.min_c,
        "max_c": s.max_c,
        "mean_c": round(s.mean_c, 4),
        "mkt_c": round(s.mkt_c, 4),
        "out_of_range_s": s.out_of_range_ms / 1000,
        "verdict": own.line,
        "reasons": list(own.reasons),
        "rules": [
            {
                "rule": e.rule.name,
                "severity": e.rule.severity,
                "kind": e.rule.kind,
                "threshold_c": e.rule.threshold_c,
                "delay_s": e.rule.delay_s,
                "beyond_s": e.out_of_range_ms / 1000,
                "excursions": [
                    {"start": iso(x.start_ms), "end": iso(x.end_ms), "peak_c": x.peak_c} for x in e.excursions
                ],
            }
            for e in s.rules
        ],
    }


def _motion(m: CrateMotion) -> dict[str, Any]:
    """One crate's route, phases, tilts and shocks."""

    def area(a: Area | None) -> dict[str, float] | None:
        return None if a is None else {"lat": a.center.lat, "lon": a.center.lon, "radius_km": a.radius_km}

    return {
        "crate": m.crate,
        "origin_area": area(m.origin),
        "destination_area": area(m.destination),
        "time_in_phase_s": {phase: m.time_in(phase) / 1000 for phase in PHASES},
        "phases": [
            {"phase": s.phase, "start": iso(s.start_ms), "end": iso(s.end_ms), "start_ms": s.start_ms,
             "end_ms": s.end_ms, "duration_s": s.duration_ms / 1000}
            for s in m.phases
        ],
        "track": [[list(fix) for fix in stretch] for stretch in m.track],
        "tilt_limit_deg": m.tipped_deg,
        "tilts": [
            {"start": iso(t.start_ms), "end": None if t.end_ms is None else iso(t.end_ms), "start_ms": t.start_ms,
             "end_ms": t.end_ms, "peak_deg": t.peak_deg}
            for t in m.tilts
        ],
        "shocks": [{"time": iso(x.ts_ms), "ts_ms": x.ts_ms, "shock_g": x.shock_g, "tilt_deg": x.tilt_deg}
                   for x in m.shocks],
    }  # fmt: skip


def motion_rows(report: Report) -> list[list[Any]]:
    """CSV rows (``CSV_COLUMNS``) of each crate's phases, tilts beyond the limit and shocks, in that order."""
    rows: list[list[Any]] = []

    def row(scope: str, crate: str, start_ms: int, end_ms: int | None, what: str) -> None:
        end = "" if end_ms is None else iso(end_ms)
        rows.append([report.identity.subject, scope, crate, "", iso(start_ms), end, *[""] * 8, what, report.sha256])

    for m in report.motion:
        for s in m.phases:
            row("phase", m.crate, s.start_ms, s.end_ms, f"{s.phase} for {format_duration(s.duration_ms)}")
        for t in m.tilts:
            row("tilt", m.crate, t.start_ms, t.end_ms, f"beyond {m.tipped_deg:g}° (at most {t.peak_deg:.1f}°)")
        for x in m.shocks:
            left = "" if x.tilt_deg is None else f", left at {x.tilt_deg:.1f}°"
            row("shock", m.crate, x.ts_ms, x.ts_ms, f"{x.shock_g:.2f} g{left}")
    return rows


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data, readings included."""
    r = report.record
    return {
        "subject": report.identity.subject,
        "kind": report.identity.kind,
        "crates": list(report.identity.crates),
        "shipment": report.identity.shipment,
        "product": report.identity.product,
        "origin": report.identity.origin,
        "destination": report.identity.destination,
        "profile": r.profile.name if r.profile else None,
        "start": iso(r.start_ms),
        "end": iso(r.end_ms),
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "generated": iso(report.generated_ms),
        "source": report.source,
        "verdict": report.verdict.line,
        "reasons": list(report.verdict.reasons),
        "incomplete": [_hole(h) for h in report.verdict.holes],
        "sha256": report.sha256,
        "sha256_format": f"coldchain-report-data v{FORMAT_VERSION} (docs/queries.md)",
        "releases": [
            {**asdict(x), "time": iso(x.ts_ms), "on_this_data": x.sha256 == report.sha256} for x in report.releases
        ],
        "sensors": [_sensor(report, i, s) for i, s in enumerate(r.summaries)],
        "budgets": [
            {"rule": b.rule.name, "severity": b.rule.severity, "budget_s": b.rule.budget_s, "used_s": b.used_ms / 1000}
            for b in report.budgets
        ],
        "alarms": [{**asdict(a), "transition": a.transition} for a in report.alarms],
        "gaps": [
            {
                "ts_ms": g.ts_ms,
                "crate": g.crate,
                "first_seq": g.first_seq,
                "last_seq": g.last_seq,
                "state": g.state,
                "missing": g.missing,
                "lost": g.lost,
            }
            for g in report.gaps
        ],
        "motion": [_motion(m) for m in report.motion],
        "faults": [
            {"crate": f.crate, "sensor": f.sensor, "ts_ms": f.ts_ms, "fault": f.fault, "seq": f.seq, **_flag(f)}
            for f in r.faults
        ],
        "readings": [
            {"crate": x.crate, "sensor": x.sensor, "ts_ms": x.ts_ms, "value_c": x.value_c, "seq": x.seq, **_flag(x)}
            for x in r.readings
        ],
    }


CSV_COLUMNS = [
    "subject", "scope", "crate_sensor", "readings", "first_utc", "last_utc", "min_c", "max_c", "mean_c", "mkt_c",
    "out_of_range_s", "critical_excursions", "warning_excursions", "verdict", "reasons", "sha256",
]  # fmt: skip


def write_csv(report: Report, out: TextIO) -> None:
    """The record's row (its verdict and reasons), then one row per probe with its statistics and own verdict."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    summaries = report.record.summaries
    counts: list[dict[str, int]] = []
    for s in summaries:
        by: dict[str, int] = defaultdict(int)
        for rule, _ in s.excursions:
            by[rule.severity] += 1
        counts.append(by)
    writer.writerow(
        [report.identity.subject, "record", "", sum(s.count for s in summaries),
         iso(min(s.first_ms for s in summaries)), iso(max(s.last_ms for s in summaries)),
         f"{min(s.min_c for s in summaries):.2f}", f"{max(s.max_c for s in summaries):.2f}", "", "", "",
         sum(c["critical"] for c in counts), sum(c["warning"] for c in counts),
         report.verdict.line, "; ".join(report.verdict.reasons), report.sha256]
    )  # fmt: skip
    for s, by, own in zip(summaries, counts, report.probe_verdicts, strict=True):
        writer.writerow(
            [report.identity.subject, "probe", s.sensor, s.count, iso(s.first_ms), iso(s.last_ms),
             f"{s.min_c:.2f}", f"{s.max_c:.2f}", f"{s.mean_c:.2f}", f"{s.mkt_c:.2f}",
             f"{s.out_of_range_ms / 1000:.0f}", by["critical"], by["warning"],
             own.line, "; ".join(own.reasons), report.sha256]
        )  # fmt: skip
    writer.writerows(motion_rows(report))


def write_text(report: Report, form: str, out: TextIO) -> None:
    """``json`` or ``csv`` to ``out``."""
    if form == "json":
        json.dump(report_json(report), out, indent=1)
        out.write("\n")
    else:
        write_csv(report, out)
