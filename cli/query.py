"""``coldchain query CRATE``: a crate's readings over a window, with min/max/mean and time out of range.

The limits come from the crate's product profile (the ``profile`` its readings were
stored with, or ``--profile``) in the profiles file. A reading beyond a critical
limit is marked ``!``, beyond a warning limit ``*``. ``--csv`` writes the readings
for a spreadsheet instead. Works against InfluxDB 1.x (InfluxQL) and v2 servers (Flux).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from adapters.influx_errors import InfluxError
from adapters.influx_read import Reader, fetch_readings, open_reader
from adapters.influx_rows import FaultRow, ReadingRow
from cli.influx_settings import add_influx_arguments, influx_problem
from cli.influx_settings import settings_from_args as influx_settings
from cli.progress import Progress
from cli.window import Window, add_window_arguments, format_duration, iso, window_from_args
from coldchain import profiles
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from coldchain.profiles import Profile, ThresholdRule
from coldchain.record.stats import SensorSummary, default_max_hold_ms, summarise
from coldchain.settings.argtypes import positive_int
from coldchain.settings.influx import InfluxSettings
from coldchain.settings.table import load_toml
from coldchain.topics import IDENTIFIER_RULE, valid_identifier

__all__ = ["Record", "check_record_arguments", "load_profiles", "main", "read_record"]

SHIPPED_PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles.toml"
INSTALLED_PROFILES = Path("/etc/coldchain/profiles.toml")


@dataclass(frozen=True, slots=True)
class Record:
    """A crate's (or shipment's) readings over a window, judged against its profile."""

    crates: tuple[str, ...]
    start_ms: int
    end_ms: int
    profile: Profile | None
    readings: tuple[ReadingRow, ...]
    summaries: tuple[SensorSummary, ...]
    max_hold_ms: int
    faults: tuple[FaultRow, ...] = ()

    def label(self, row: ReadingRow | FaultRow) -> str:
        """The probe's name in tables: ``sensor``, or ``crate/sensor`` when the record spans crates."""
        return probe_label(self.crates, row)

    def fault_counts(self) -> Counter[str]:
        """Fault readings per probe label."""
        return Counter(self.label(f) for f in self.faults)

    @property
    def rules(self) -> tuple[ThresholdRule, ...]:
        """The threshold rules readings are judged by (none without a profile)."""
        return self.profile.rules if self.profile else ()

    def marker(self, value_c: float) -> str:
        """``!`` beyond a critical limit, ``*`` beyond a warning limit, else nothing."""
        breached = [r for r in self.rules if r.breached(value_c)]
        if any(r.severity == "critical" for r in breached):
            return "!"
        return "*" if breached else ""


def probe_label(crates: tuple[str, ...], row: ReadingRow | FaultRow) -> str:
    """``sensor``; ``crate/sensor`` when a shipment spans crates, whose probes may share names."""
    return f"{row.crate}/{row.sensor}" if len(crates) > 1 else row.sensor


def load_profiles(path: Path | None) -> tuple[dict[str, Profile], Path]:
    """The profiles of ``path``, else of the installed file, else of the one shipped with the code."""
    chosen = path or (INSTALLED_PROFILES if INSTALLED_PROFILES.is_file() else SHIPPED_PROFILES)
    return profiles.load_profiles(chosen), chosen


def profiles_file(args: argparse.Namespace) -> Path | None:
    """``--profiles``, else the ``[profiles] file`` of the gateway TOML given with ``--config``, else None."""
    if args.profiles is not None or args.config is None:
        return args.profiles  # type: ignore[no-any-return]
    try:
        config = load_toml(args.config)
    except ConfigError:
        return None  # reading the [influxdb] table already reported what is wrong with the file
    return config.table("profiles").file_path("file", args.config.parent)


def check_record_arguments(args: argparse.Namespace) -> InfluxSettings:
    """Where to read and what to judge by, checked before any query: ConfigError naming what is wrong."""
    settings = influx_settings(args)
    known, source = load_profiles(profiles_file(args))
    if args.profile is not None and args.profile not in known:
        problem = f"{args.profile!r} is not a profile in {source} ({sorted(known)})"
        raise ConfigError("command line", "--profile", problem)
    return settings


def _profile(rows: Sequence[ReadingRow], wanted: str | None, profiles_path: Path | None, err: TextIO) -> Profile | None:
    profiles, source = load_profiles(profiles_path)
    stored = Counter(r.profile for r in rows if r.profile)
    name = wanted or (stored.most_common(1)[0][0] if stored else None)
    if name is None:
        print("note: the readings carry no profile and none was given (--profile): no limits applied", file=err)
        return None
    if name not in profiles:
        raise ConfigError(str(source), name, f"no such profile (known: {', '.join(sorted(profiles))})")
    return profiles[name]


def read_record(
    reader: Reader,
    tags: dict[str, str],
    *,
    crates: tuple[str, ...],
    window: Window,
    args: argparse.Namespace,
    progress: Progress,
    err: TextIO,
) -> Record:
    """Fetch the readings with ``tags`` in ``window`` (unbounded ends: the data's own) and summarise them."""
    start, end = window.start_ms, window.end_ms
    if start is None or end is None:
        extent = reader.extent(tags)
        if extent is None:
            return Record(crates, start or 0, end or 0, None, (), (), 0)
        start = extent[0] if start is None else start
        end = extent[1] + 1 if end is None else end
    span = max(1, end - start)

    def report(done_ms: int, rows: int) -> None:
        progress.update(f"reading {', '.join(crates)}: {100 * done_ms // span:3d}%  {rows} readings")

    fetched = fetch_readings(reader, tags, start, end, report)
    progress.done(f"read {len(fetched)} readings of {', '.join(crates)} from {reader.settings.where}")
    rows = [r for r in fetched if isinstance(r, ReadingRow)]
    faults = tuple(r for r in fetched if isinstance(r, FaultRow))
    profile = _profile(rows, args.profile, profiles_file(args), err) if rows else None
    rules = profile.rules if profile else ()
    by_sensor: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        by_sensor[probe_label(crates, row)].append((row.ts_ms, row.value_c))
    hold = args.max_hold or (default_max_hold_ms(max(by_sensor.values(), key=len)) if by_sensor else 0)
    summaries = tuple(summarise(sensor, by_sensor[sensor], rules, end, hold) for sensor in sorted(by_sensor))
    return Record(crates, start, end, profile, tuple(rows), summaries, hold, faults)


def _readings_table(record: Record, out: TextIO) -> None:
    sensors = sorted({s.sensor for s in record.summaries} | set(record.fault_counts()))
    by_time: dict[int, dict[str, str]] = defaultdict(dict)
    for row in record.readings:
        by_time[row.ts_ms][record.label(row)] = f"{row.value_c:.2f}{record.marker(row.value_c) or ' '}"
    for fault in record.faults:
        by_time[fault.ts_ms][record.label(fault)] = f"{fault.fault} "
    print("time (UTC)                " + "".join(f"{s:>12}" for s in sensors), file=out)
    for ts in sorted(by_time):
        cells = "".join(by_time[ts].get(s, "- ").rjust(12) for s in sensors)
        print(f"{iso(ts)}  {cells}".rstrip(), file=out)
    if any(record.marker(r.value_c) for r in record.readings):
        print("! beyond a critical limit   * beyond a warning limit", file=out)
    print(file=out)


def _rule_label(rule: ThresholdRule) -> str:
    return f"{rule.name} {'>' if rule.kind == 'high' else '<'}{rule.threshold_c:g}"


def _summary_table(record: Record, out: TextIO) -> None:
    header = ["sensor", "readings", "min °C", "max °C", "mean °C", "out of range"]
    header += [_rule_label(r) for r in record.rules]
    header.append("faults")
    faults = record.fault_counts()
    rows = [header]
    for s in record.summaries:
        row = [s.sensor, str(s.count), f"{s.min_c:.2f}", f"{s.max_c:.2f}", f"{s.mean_c:.2f}"]
        row.append(format_duration(s.out_of_range_ms))
        for exposure in s.rules:
            count = len(exposure.excursions)
            row.append(f"{format_duration(exposure.out_of_range_ms)} ({count} exc.)")
        row.append(str(faults[s.sensor]))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))),
            file=out,
        )
    if record.profile:
        limits = "; ".join(f"{_rule_label(r)} °C ({r.severity}, delay {r.delay_s:g} s)" for r in record.rules)
        print(f"profile {record.profile.name}: {limits}", file=out)
        print(
            "out of range = outside the critical limits; per limit: time beyond it (excursions lasting its delay)",
            file=out,
        )


def _csv(record: Record, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_utc", "ts_ms", "crate", "sensor", "value_c", "seq", "profile", "beyond", "fault"])
    rows: list[ReadingRow | FaultRow] = sorted([*record.readings, *record.faults], key=lambda r: (r.ts_ms, r.sensor))
    for row in rows:
        seq = "" if row.seq is None else row.seq
        if isinstance(row, FaultRow):
            writer.writerow([iso(row.ts_ms), row.ts_ms, row.crate, row.sensor, "", seq, "", "", row.fault])
            continue
        beyond = " ".join(r.name for r in record.rules if r.breached(row.value_c))
        value = f"{row.value_c:.2f}"
        writer.writerow([iso(row.ts_ms), row.ts_ms, row.crate, row.sensor, value, seq, row.profile or "", beyond, ""])


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """Profile and progress options shared with ``coldchain report``."""
    parser.add_argument("--profile", help="judge against this profile instead of the one stored with the readings")
    parser.add_argument(
        "--profiles",
        type=Path,
        help="profiles file (default: the one --config names, else /etc/coldchain/profiles.toml, else the shipped one)",
    )
    parser.add_argument(
        "--max-hold",
        type=positive_int,
        metavar="MS",
        help="longest time one reading stands for (default: 3 sampling periods, at least 60000)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="status line on stderr (default: when stderr is a terminal)",
    )


def main(argv: list[str], prog: str = "coldchain query") -> int:
    """Print (or export) a crate's readings and their statistics."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("crate", help="crate id, e.g. C-0042")
    parser.add_argument("--csv", action="store_true", help="write the readings as CSV to stdout")
    parser.add_argument("--summary", action="store_true", help="statistics only, no readings")
    add_record_arguments(parser)
    add_window_arguments(parser, default_since="6h")
    add_influx_arguments(parser)
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    if not valid_identifier(args.crate):
        parser.error(f"crate id {args.crate!r} must be {IDENTIFIER_RULE}")
    try:
        window = window_from_args(args, int(time.time() * 1000))
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        settings = check_record_arguments(args)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=err)
        return 2
    try:
        reader = open_reader(settings)
        record = read_record(
            reader,
            {"crate": args.crate},
            crates=(args.crate,),
            window=window,
            args=args,
            progress=Progress(args.progress),
            err=err,
        )
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=err)
        return 1
    except InfluxError as exc:
        print(f"{prog}: {influx_problem(exc, settings)}", file=err)
        return 1
    if not record.readings:
        span = f"between {iso(record.start_ms)} and {iso(record.end_ms)}" if record.end_ms else "at all"
        print(f"{prog}: no readings of crate {args.crate} {span} in {reader.settings.where}", file=err)
        return 1
    if args.csv:
        _csv(record, out)
        return 0
    profile = record.profile.name if record.profile else "none"
    span = f"{iso(record.start_ms)} .. {iso(record.end_ms)}  ({format_duration(record.end_ms - record.start_ms)})"
    print(f"crate {args.crate}  profile {profile}  {span}", file=out)
    print(file=out)
    if not args.summary:
        _readings_table(record, out)
    _summary_table(record, out)
    return 0
