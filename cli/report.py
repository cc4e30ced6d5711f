"""``coldchain report SHIPMENT_OR_CRATE``: the document a receiving site's QA needs to release the product.

The subject is looked up as a shipment first (readings tagged ``shipment``), then
as a crate id (whose readings' ``shipment`` tag names its shipment, when it has one).
A shipment's origin, destination and product come from its record as the
gateway stored it (measurement ``shipment``, from ``[shipments]`` of its config), unless
``--origin``, ``--destination`` or ``--product`` give them. The report holds the
identity and times, a chart of every probe with its limits, excursions and holes,
min/max/mean/MKT, cumulative time out of range against the profile's budget, every
alarm transition with who acknowledged it, the data gaps, for crates with a GPS receiver or an
accelerometer the route (a plain track plot), the time in each phase of the shipment (origin,
transit, destination: from its record's geofences) and the tilts and shocks, a verdict ("within profile",
"incomplete record: review required" or "excursion: review required", coldchain.record.verdict)
with every hole of the record, the release decisions taken on it (``coldchain release``)
and the SHA-256 of the data it rests on (canonical serialisation: docs/queries.md).

``--format pdf`` (default, needs ``--out``), ``csv`` (a row for the record, then one per
probe with the probe's own verdict) or ``json`` (everything, readings included, so the
hash can be recomputed from it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO, TypedDict

from adapters.influx_errors import InfluxError
from adapters.influx_read import Reader, open_reader
from adapters.influx_rows import AlarmRow, FaultRow, GapRow, ReadingRow, ReleaseRow
from cli.influx_settings import add_influx_arguments, influx_problem
from cli.progress import Progress
from cli.query import Record, add_record_arguments, check_record_arguments, read_record
from cli.report_motion import CrateMotion, read_motion
from cli.window import Window, add_window_arguments, iso, window_from_args
from coldchain.alarms.rules import CRATE_SENSOR
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from coldchain.record.completeness import Hole, fault_holes, gap_holes, silent_holes, stale_limit_ms, time_holes
from coldchain.record.digest import data_digest
from coldchain.record.stats import BudgetUse, SensorSummary, budget_use
from coldchain.record.verdict import Verdict, verdict
from coldchain.settings.argtypes import text
from coldchain.topics import valid_identifier

__all__ = ["Identity", "Report", "build_report", "identify", "main"]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the report is about."""

    subject: str
    kind: str  # "shipment" or "crate"
    crates: tuple[str, ...]
    product: str | None = None
    origin: str | None = None
    destination: str | None = None
    shipment: str | None = None  # a crate's shipment (the ``shipment`` tag of its readings)

    @property
    def tag(self) -> str:
        """The tag naming the subject in InfluxDB: ``shipment`` or ``crate``."""
        return "shipment" if self.kind == "shipment" else "crate"


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
    releases: tuple[ReleaseRow, ...] = ()
    probe_verdicts: tuple[Verdict, ...] = ()  # one per ``record.summaries``, each judged on that probe alone
    motion: tuple[CrateMotion, ...] = ()  # route, phases, tilts and shocks of the crates that report them


class Details(TypedDict):
    """The shipment record's fields of an ``Identity`` (typed, so that ``**details`` fills only these)."""

    product: str | None
    origin: str | None
    destination: str | None


def _details(args: argparse.Namespace) -> Details:
    return Details(product=args.product, origin=args.origin, destination=args.destination)


def _stored(reader: Reader, shipment: str, given: Details) -> Details:
    """The options given, the shipment's stored record for the others."""
    if None not in given.values():
        return given
    stored = reader.shipment(shipment)
    return Details(
        product=stored.get("product") if given["product"] is None else given["product"],
        origin=stored.get("origin") if given["origin"] is None else given["origin"],
        destination=stored.get("destination") if given["destination"] is None else given["destination"],
    )


def identify(reader: Reader, args: argparse.Namespace) -> tuple[Identity, dict[str, str]]:
    """A shipment (its crates, and its record as the gateway wrote it, the options overriding) or a crate."""
    crates = reader.crates_where("shipment", args.subject)
    if crates:
        extra = _stored(reader, args.subject, _details(args))
        return Identity(args.subject, "shipment", tuple(crates), **extra), {"shipment": args.subject}
    if not valid_identifier(args.subject):
        raise ConfigError("command line", "SHIPMENT_OR_CRATE", f"{args.subject!r} is not a valid crate id")
    return Identity(args.subject, "crate", (args.subject,), **_details(args)), {"crate": args.subject}


def _crate_shipment(reader: Reader, identity: Identity, record: Record, args: argparse.Namespace) -> Identity:
    """A crate's report names the shipment its readings were tagged with, and shows that shipment's record."""
    shipments = sorted({r.shipment for r in record.readings if r.shipment})
    if identity.kind != "crate" or not shipments:
        return identity
    if len(shipments) > 1:  # the crate moved between shipments within the window: no one record applies
        return replace(identity, shipment=", ".join(shipments))
    return replace(identity, shipment=shipments[0], **_stored(reader, shipments[0], _details(args)))


def _critical_alarms(alarms: tuple[AlarmRow, ...]) -> list[str]:
    seen: dict[str, str] = {}
    for a in alarms:
        if a.severity == "critical" and a.transition == "active":
            seen.setdefault(
                a.alarm_id or f"{a.crate}/{a.rule}/{a.sensor}/{a.ts_ms}",
                f"{a.crate}/{a.rule}/{a.sensor} raised {iso(a.ts_ms)}",
            )
    return list(seen.values())


def _crate_holes(record: Record, gaps: tuple[GapRow, ...]) -> list[Hole]:
    """Each crate's unfilled gaps, beyond the profile's stale limit its silent stretches (window edges too), and
    its runs of messages taken while its clock was unset."""
    holes: list[Hole] = []
    limit = stale_limit_ms(record.profile)
    for crate in record.crates:
        rows: tuple[ReadingRow | FaultRow, ...] = (*record.readings, *record.faults)
        # by time: a point stored without a seq (none the gateway writes) must not make the sort compare None
        own = {(r.ts_ms, r.seq, r.ts_flag or "") for r in rows if r.crate == crate}
        flagged = sorted(own, key=lambda m: (m[0], m[1] or -1, m[2]))
        messages = list(dict.fromkeys((ts, seq) for ts, seq, _ in flagged))  # one per message, in that order
        facts = [(g.ts_ms, g.first_seq, g.last_seq, g.state, g.still_missing, g.lost) for g in gaps if g.crate == crate]
        found = gap_holes(crate, facts, messages)
        if limit is not None:
            times = sorted({record.start_ms, *(t for t, _ in messages), record.end_ms})
            found += silent_holes(crate, times, limit, found)
        holes += found + time_holes(crate, [(ts, flag or None) for ts, _, flag in flagged])
    return holes


def _fault_holes(record: Record) -> dict[str, list[Hole]]:
    """Each probe's runs of fault readings, by probe label."""
    samples: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for f in record.faults:
        samples[record.label(f)].append((f.ts_ms, f.fault))
    for r in record.readings:
        if record.label(r) in samples:
            samples[record.label(r)].append((r.ts_ms, None))
    return {probe: fault_holes(probe, sorted(rows, key=lambda s: s[0])) for probe, rows in sorted(samples.items())}


def _probe_verdict(record: Record, summary: SensorSummary, alarms: tuple[AlarmRow, ...], holes: list[Hole]) -> Verdict:
    """A probe judged alone: its excursions, its and its crate's critical alarms, its faults and its crate's holes."""
    crate, _, sensor = summary.sensor.rpartition("/")
    crate = crate or record.crates[0]
    own = _critical_alarms(tuple(a for a in alarms if a.crate == crate and a.sensor in (sensor, CRATE_SENSOR)))
    mine = [h for h in holes if h.where in (summary.sensor, crate)]
    return verdict([summary], own, (), mine, judged=record.profile is not None)


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
    identity = _crate_shipment(reader, identity, record, args)
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
    critical = _critical_alarms(alarms)
    holes = _crate_holes(record, gaps)
    holes += [h for found in _fault_holes(record).values() for h in found]
    judged = verdict(record.summaries, critical, budgets, holes, judged=record.profile is not None)
    per_probe = tuple(_probe_verdict(record, s, alarms, holes) for s in record.summaries)
    digest = data_digest(
        identity.subject,
        record.start_ms,
        record.end_ms,
        [(r.crate, r.sensor, r.ts_ms, r.value_c, r.seq, r.ts_flag) for r in record.readings],
        faults=[(f.crate, f.sensor, f.ts_ms, f.fault, f.seq, f.ts_flag) for f in record.faults],
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
    releases = tuple(reader.releases(identity.tag, identity.subject)) if record.readings else ()
    motion = (
        read_motion(reader, identity.crates, record.profile, record.start_ms, record.end_ms) if record.readings else ()
    )
    return Report(
        identity, record, alarms, gaps, tuple(budgets), judged, digest, now, reader.settings.where, releases, per_probe,
        motion,
    )  # fmt: skip


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The subject, product, window, profile and InfluxDB options ``coldchain release`` shares."""
    parser.add_argument(
        "subject", metavar="SHIPMENT_OR_CRATE", help="shipment id (readings tagged shipment=...) or crate id"
    )
    stored = " (default: the shipment's record, measurement shipment)"
    parser.add_argument("--product", type=text, help="product shipped, as on the paperwork" + stored)
    parser.add_argument("--origin", type=text, help="where the shipment started" + stored)
    parser.add_argument("--destination", type=text, help="where it is delivered" + stored)
    add_record_arguments(parser)
    add_window_arguments(parser, default_since=None)
    add_influx_arguments(parser)


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
        "--out", "-o", type=Path, help="where to write the report (PDF: required; csv/json: default stdout)"
    )
    parser.add_argument("--format", choices=("pdf", "csv", "json"), default="pdf")
    add_report_arguments(parser)
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
        identity, tags = identify(reader, args)
        report = build_report(reader, identity, tags, window, args=args, progress=progress, err=err)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=err)
        return 1
    except InfluxError as exc:
        print(f"{prog}: {influx_problem(exc, settings)}", file=err)
        return 1
    if not report.record.readings:
        print(f"{prog}: no readings of {identity.kind} {identity.subject} in {reader.settings.where}", file=err)
        return 1
    if args.format == "pdf":
        from cli.report_pdf import render_pdf  # noqa: PLC0415 (matplotlib and reportlab load only for a PDF)

        render_pdf(report, args.out, progress)
    else:
        from cli.report_text import write_text  # noqa: PLC0415

        if args.out is None:
            write_text(report, args.format, sys.stdout)
        else:
            with args.out.open("w", newline="") as out:
                write_text(report, args.format, out)
    if args.out:
        print(f"{args.out}: {report.verdict.line}; data SHA-256 {report.sha256}", file=err)
    return 0
