"""``coldchain release SHIPMENT_OR_CRATE --by NAME --decision released|rejected --note TEXT --sha256 HASH``.

QA's decision on a shipment (or crate) becomes part of the record: a point of InfluxDB measurement
``release`` that later reports show on their first page. A decision is taken on a report someone
read, so it names that report's data SHA-256 (``--sha256``, printed on the PDF under "Data integrity",
``sha256`` in the JSON and CSV). The command recomputes the hash from the record now, exactly as
``coldchain report`` does with the same subject and window (give the report's ``--from``/``--to``
again, if it had any; a ``--since`` window moves with the clock: give its Window line as ``--from``/
``--to``), and records the decision only when they are
equal. If the record changed since (a backlog's late readings, a gap filled, an alarm acknowledged),
nothing is written: the command says what the report rested on and what the record holds now, and
the person makes and reads a new report. A release is allowed whatever the verdict: "review
required" asks for a person's judgement, and ``--note`` records it.

The point: tag ``shipment`` (or ``crate``) = the subject; fields ``by``, ``decision``, ``note``,
``sha256``, ``verdict`` (the report's), ``start_ms``, ``end_ms`` (its window); time = the decision.
Exit status 0 when recorded, 1 when refused or InfluxDB failed, 2 on bad use.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import NoReturn

from adapters.influx_errors import InfluxError
from adapters.influx_read import open_reader
from adapters.influx_write import write_once
from cli.influx_settings import add_influx_arguments, influx_problem
from cli.progress import Progress
from cli.query import add_record_arguments, check_record_arguments
from cli.report import Identity, Report, build_report, identify
from cli.window import add_window_arguments, iso, window_from_args
from coldchain.errors import ConfigError, StoreError
from coldchain.helptext import help_text
from coldchain.record.lineprotocol import point
from coldchain.wire import MAX_ACK_BY, MAX_ACK_NOTE

__all__ = ["DECISIONS", "SHA256", "main", "refusal", "release_point"]

DECISIONS = ("released", "rejected")
SHA256 = re.compile(r"[0-9a-f]{64}")  # a report's data hash, lower-case hex


class _Parser(argparse.ArgumentParser):
    """Bad use is one line naming the problem, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def release_point(identity: Identity, report: Report, *, by: str, decision: str, note: str, ts_ms: int) -> str:
    """The ``release`` point of a decision on ``report``."""
    fields: dict[str, str | int] = {
        "by": by,
        "decision": decision,
        "note": note,
        "sha256": report.sha256,
        "verdict": report.verdict.line,
        "start_ms": report.record.start_ms,
        "end_ms": report.record.end_ms,
    }
    return point("release", {identity.tag: identity.subject}, fields, ts_ms)


def _text(parser: argparse.ArgumentParser, value: str, flag: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit or not text.isprintable():
        parser.error(f"{flag} must be 1-{limit} printable characters, got {value[:40]!r}")
    return text


def refusal(report: Report, read: str) -> str:
    """Why a decision on the data hashed ``read`` is refused: the record now hashes otherwise."""
    record = report.record
    return (
        f"the record changed since the report you read: that report's data SHA-256 is {read}, the record's is now "
        f"{report.sha256} ({len(record.readings)} readings, {len(record.faults)} probe faults, "
        f"{len(report.alarms)} alarm transitions, {len(report.gaps)} gap records from {iso(record.start_ms)} "
        f"to {iso(record.end_ms)}; verdict now: {report.verdict.line}); nothing was recorded: make a new report "
        "with the same window options, read it, and release on its SHA-256"
    )


def main(argv: list[str], prog: str = "coldchain release") -> int:
    """Record QA's release decision on the data a report showed them."""
    parser = _Parser(prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("subject", metavar="SHIPMENT_OR_CRATE", help="what the report was about")
    parser.add_argument("--by", required=True, help="your name: who takes the decision")
    parser.add_argument("--decision", required=True, choices=DECISIONS, help="released or rejected")
    parser.add_argument("--note", required=True, help="why, e.g. 'excursion of 50 s reviewed, within stability data'")
    parser.add_argument("--sha256", required=True, help="the data SHA-256 printed on the report you read")
    add_record_arguments(parser)
    add_window_arguments(parser, default_since=None)
    add_influx_arguments(parser)
    parser.set_defaults(product=None, origin=None, destination=None)
    args = parser.parse_args(argv)
    by = _text(parser, args.by, "--by", MAX_ACK_BY)
    note = _text(parser, args.note, "--note", MAX_ACK_NOTE)
    if args.since is not None:
        parser.error(
            "--since moves with the clock, so no later run can recompute a report's hash: give the report's window "
            "as --from START --to END (its Window line)"
        )
    read = args.sha256.strip().lower()
    if not SHA256.fullmatch(read):
        parser.error(f"--sha256 must be the report's 64 hexadecimal digits, got {args.sha256[:70]!r}")
    try:
        window = window_from_args(args, int(time.time() * 1000))
        settings = check_record_arguments(args)  # the profiles and --profile too, before any query
    except (argparse.ArgumentTypeError, ConfigError) as exc:
        parser.error(str(exc))
    err = sys.stderr
    try:
        reader = open_reader(settings)
        identity, tags = identify(reader, args)
        report = build_report(reader, identity, tags, window, args=args, progress=Progress(args.progress), err=err)
    except ConfigError as exc:
        parser.error(str(exc))
    except InfluxError as exc:
        print(f"{prog}: {influx_problem(exc, settings)}", file=err)
        return 1
    if not report.record.readings:
        print(
            f"{prog}: no readings of {identity.kind} {identity.subject} in {settings.where}: nothing to release",
            file=err,
        )
        return 1
    if report.sha256 != read:
        print(f"{prog}: refused: {refusal(report, read)}", file=err)
        return 1
    now = int(time.time() * 1000)
    try:
        line = release_point(identity, report, by=by, decision=args.decision, note=note, ts_ms=now)
        write_once(settings, line.encode())
    except (StoreError, OSError) as exc:
        print(f"{prog}: the decision was NOT recorded: {exc}", file=err)
        return 1
    print(
        f"{identity.kind} {identity.subject} {args.decision} by {by} at {iso(now)}, recorded in {settings.where} "
        f"(on data SHA-256 {report.sha256}, verdict {report.verdict.line})"
    )
    return 0
