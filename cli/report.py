"""``coldchain report SHIPMENT_OR_CRATE``: the document a receiving site's QA needs to release the product.

The subject is looked up as a shipment first (readings tagged ``shipment``), then
as a crate id. A shipment's origin, destination and product come from its record as the
gateway stored it (measurement ``shipment``, from ``[shipments]`` of its config), unless
``--origin``, ``--destination`` or ``--product`` give them. The report holds the
identity and times, a chart of every probe with its limits and excursions,
min/max/mean/MKT, cumulative time out of range against the profile's budget, every
alarm transition with who acknowledged it, the data gaps, a verdict line ("within
profile" / "excursion: review required") and the SHA-256 of the data it rests on
(canonical serialisation: docs/queries.md).

``--format pdf`` (default, needs ``--out``), ``csv`` (one row per probe) or ``json``
(everything, readings included, so the hash can be recomputed from it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from cli.influx_read import AlarmRow, GapRow, InfluxReadError, Reader, open_reader
from cli.influx_settings import add_influx_arguments
from cli.progress import Progress
from cli.query import Record, add_record_arguments, check_record_arguments, read_record
from cli.window import Window, add_window_arguments, iso, window_from_args
from coldchain.argtypes import text
from coldchain.digest import FORMAT_VERSION, data_digest
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from coldchain.stats import REVIEW_REQUIRED, BudgetUse, Verdict, budget_use, verdict
from coldchain.topics import valid_identifier

__all__ = ["Identity", "Report", "build_report", "main"]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the report is about."""

    subject: str
    kind: str  # "shipment" or "crate"
    crates: tuple[str, ...]
    product: str | None = None
    origin: str | None = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the document shows, computed once for every format."""

    identity: Identity
    record: Record
    alarms: tuple[AlarmRow, ...]
    gaps: tuple[GapRow, ...]
    budgets: tuple[BudgetUse, ...]
    verdict: Verdict
    sha256: str
    generated_ms: int
    source: str


def _identity(reader: Reader, args: argparse.Namespace) -> tuple[Identity, dict[str, str]]:
    """A shipment (its crates, and its record as the gateway wrote it, the options overriding) or a crate."""
    crates = reader.crates_where("shipment", args.subject)
    extra = {"product": args.product, "origin": args.origin, "destination": args.destination}
    if crates:
        if None in extra.values():
            stored = reader.shipment(args.subject)
            extra = {key: value if value is not None else stored.get(key) for key, value in extra.items()}
        return Identity(args.subject, "shipment", tuple(crates), **extra), {"shipment": args.subject}
    if not valid_identifier(args.subject):
        raise ConfigError("command line", "SHIPMENT_OR_CRATE", f"{args.subject!r} is not a valid crate id")
    return Identity(args.subject, "crate", (args.subject,), **extra), {"crate": args.subject}


def _critical_alarms(alarms: tuple[AlarmRow, ...]) -> list[str]:
    seen: dict[str, str] = {}
    for a in alarms:
        if a.severity == "critical" and a.state == "active":
            seen.setdefault(
                a.alarm_id or f"{a.crate}/{a.rule}/{a.sensor}/{a.ts_ms}",
                f"{a.crate}/{a.rule}/{a.sensor} raised {iso(a.ts_ms)}",
            )
    return list(seen.values())


def _fault_reasons(record: Record) -> list[str]:
    """A probe that could not read left the temperature unknown for a while: that needs a look too."""
    reasons = []
    for probe, count in sorted(record.fault_counts().items()):
        mine = [f for f in record.faults if record.label(f) == probe]
        kinds = ", ".join(sorted({f.fault for f in mine}))
        first, last = min(f.ts_ms for f in mine), max(f.ts_ms for f in mine)
        reasons.append(
            f"{probe}: {count} fault readings ({kinds}) from {iso(first)} to {iso(last)}: temperature unknown"
        )
    return reasons


def build_report(
    reader: Reader,
    identity: Identity,
    tags: dict[str, str],
    window: Window,
    *,
    args: argparse.Namespace,
    progress: Progress,
    err: TextIO,
) -> Report:
    """Read everything the report rests on and judge it."""
    now = int(time.time() * 1000)
    record = read_record(reader, tags, crates=identity.crates, window=window, args=args, progress=progress, err=err)
    # transitions after the last reading (an acknowledgement, a clear) still belong to an open-ended report
    events_end = window.end_ms if window.end_ms is not None else max(now, record.end_ms)
    alarms = tuple(reader.alarms(list(identity.crates), record.start_ms, events_end)) if record.readings else ()
    gaps = tuple(reader.gaps(list(identity.crates), record.start_ms, events_end)) if record.readings else ()
    budgets: list[BudgetUse] = []
    if record.profile is not None:
        for crate in identity.crates:
            series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for row in record.readings:
                if row.crate == crate:
                    series[row.sensor].append((row.ts_ms, row.value_c))
            budgets += budget_use(record.profile, series, record.start_ms, record.end_ms)
    judged = verdict(record.summaries, _critical_alarms(alarms), budgets)
    blind = _fault_reasons(record)
    if blind:
        judged = Verdict(REVIEW_REQUIRED, (*judged.reasons, *blind))
    if record.profile is None and record.readings:
        unjudged = "no product profile (stored or --profile): the readings were not judged against limits"
        judged = Verdict(REVIEW_REQUIRED, (unjudged, *judged.reasons))
    digest = data_digest(
        identity.subject,
        record.start_ms,
        record.end_ms,
        [(r.crate, r.sensor, r.ts_ms, r.value_c, r.seq) for r in record.readings],
        faults=[(f.crate, f.sensor, f.ts_ms, f.fault, f.seq) for f in record.faults],
        alarms=[
            (
                a.ts_ms,
                a.crate,
                a.rule,
                a.sensor,
                a.severity,
                a.state,
                a.value_c,
                a.threshold_c,
                a.seq,
                a.alarm_id,
                a.by,
                a.note,
            )
            for a in alarms
        ],
        gaps=[(g.ts_ms, g.crate, g.first_seq, g.last_seq, g.state) for g in gaps],
    )
    return Report(identity, record, alarms, gaps, tuple(budgets), judged, digest, now, reader.settings.where)


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data, readings included."""
    r = report.record
    return {
        "subject": report.identity.subject,
        "kind": report.identity.kind,
        "crates": list(report.identity.crates),
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
        "sha256": report.sha256,
        "sha256_format": f"coldchain-report-data v{FORMAT_VERSION} (docs/queries.md)",
        "sensors": [
            {
                "sensor": s.sensor,
                "readings": s.count,
                "first": iso(s.first_ms),
                "last": iso(s.last_ms),
                "min_c": s.min_c,
                "max_c": s.max_c,
                "mean_c": round(s.mean_c, 4),
                "mkt_c": round(s.mkt_c, 4),
                "out_of_range_s": s.out_of_range_ms / 1000,
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
            for s in r.summaries
        ],
        "budgets": [
            {"rule": b.rule.name, "severity": b.rule.severity, "budget_s": b.rule.budget_s, "used_s": b.used_ms / 1000}
            for b in report.budgets
        ],
        "alarms": [asdict(a) for a in report.alarms],
        "gaps": [
            {
                "ts_ms": g.ts_ms,
                "crate": g.crate,
                "first_seq": g.first_seq,
                "last_seq": g.last_seq,
                "state": g.state,
                "missing": g.missing,
            }
            for g in report.gaps
        ],
        "faults": [
            {"crate": f.crate, "sensor": f.sensor, "ts_ms": f.ts_ms, "fault": f.fault, "seq": f.seq} for f in r.faults
        ],
        "readings": [
            {"crate": x.crate, "sensor": x.sensor, "ts_ms": x.ts_ms, "value_c": x.value_c, "seq": x.seq}
            for x in r.readings
        ],
    }


CSV_COLUMNS = [
    "subject", "crate_sensor", "readings", "first_utc", "last_utc", "min_c", "max_c", "mean_c", "mkt_c",
    "out_of_range_s", "critical_excursions", "warning_excursions", "verdict", "sha256",
]  # fmt: skip


def write_csv(report: Report, out: TextIO) -> None:
    """One row per probe with its statistics, the verdict and the data hash."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in report.record.summaries:
        by: dict[str, int] = defaultdict(int)
        for rule, _ in s.excursions:
            by[rule.severity] += 1
        writer.writerow(
            [
                report.identity.subject,
                s.sensor,
                s.count,
                iso(s.first_ms),
                iso(s.last_ms),
                f"{s.min_c:.2f}",
                f"{s.max_c:.2f}",
                f"{s.mean_c:.2f}",
                f"{s.mkt_c:.2f}",
                f"{s.out_of_range_ms / 1000:.0f}",
                by["critical"],
                by["warning"],
                report.verdict.line,
                report.sha256,
            ]
        )


def _write_text(report: Report, form: str, out: TextIO) -> None:
    if form == "json":
        json.dump(report_json(report), out, indent=1)
        out.write("\n")
    else:
        write_csv(report, out)


def _check_writable(path: Path) -> None:
    """Refuse an output path the report could not be written to (ConfigError naming it)."""
    folder = path.parent
    if path.is_dir():
        raise ConfigError("command line", "--out", f"{path} is a directory; name the report file")
    if not folder.is_dir():
        raise ConfigError("command line", "--out", f"{folder} is not an existing directory")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError("command line", "--out", f"{path} cannot be written (permission denied)")


def main(argv: list[str], prog: str = "coldchain report") -> int:
    """Build the release report of a shipment or crate."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "subject", metavar="SHIPMENT_OR_CRATE", help="shipment id (readings tagged shipment=...) or crate id"
    )
    parser.add_argument(
        "--out", "-o", type=Path, help="where to write the report (PDF: required; csv/json: default stdout)"
    )
    parser.add_argument("--format", choices=("pdf", "csv", "json"), default="pdf")
    stored = " (default: the shipment's record, measurement shipment)"
    parser.add_argument("--product", type=text, help="product shipped, as on the paperwork" + stored)
    parser.add_argument("--origin", type=text, help="where the shipment started" + stored)
    parser.add_argument("--destination", type=text, help="where it is delivered" + stored)
    add_record_arguments(parser)
    add_window_arguments(parser, default_since=None)
    add_influx_arguments(parser)
    args = parser.parse_args(argv)
    if args.format == "pdf" and args.out is None:
        parser.error("a PDF report needs --out FILE")
    err = sys.stderr
    progress = Progress(args.progress)
    try:
        window = window_from_args(args, int(time.time() * 1000))
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        settings = check_record_arguments(args)
        if args.out is not None:
            _check_writable(args.out)  # before the querying, which can take minutes
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=err)
        return 2
    try:
        reader = open_reader(settings)
        identity, tags = _identity(reader, args)
        report = build_report(reader, identity, tags, window, args=args, progress=progress, err=err)
    except (InfluxReadError, ConfigError) as exc:
        print(f"{prog}: {exc}", file=err)
        return 1
    if not report.record.readings:
        print(f"{prog}: no readings of {identity.kind} {identity.subject} in {reader.settings.where}", file=err)
        return 1
    if args.format == "pdf":
        from cli.report_pdf import render_pdf  # noqa: PLC0415 (matplotlib and reportlab load only for a PDF)

        render_pdf(report, args.out, progress)
    elif args.out is None:
        _write_text(report, args.format, sys.stdout)
    else:
        with args.out.open("w", newline="") as out:
            _write_text(report, args.format, out)
    if args.out:
        print(f"{args.out}: {report.verdict.line}; data SHA-256 {report.sha256}", file=err)
    return 0
