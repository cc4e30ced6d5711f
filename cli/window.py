"""Time windows on the command line: ``--since 6h`` or ``--from/--to`` in ISO 8601, all in UTC."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from coldchain.record.stats import format_duration

__all__ = ["Window", "add_window_arguments", "duration_ms", "format_duration", "iso", "window_from_args"]

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open interval [start_ms, end_ms) in UTC epoch milliseconds; None: unbounded."""

    start_ms: int | None
    end_ms: int | None


def duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``2d``, ``1w``, or a sum such as ``1h30m``, in milliseconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 6h, 2d or 1h30m")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def _instant(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-11-25T14:00Z or 2026-11-25"
        ) from None
    if moment.tzinfo is None:  # a receiving site reads UTC off the paperwork; never guess a local zone
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def add_window_arguments(parser: argparse.ArgumentParser, default_since: str | None) -> None:
    """``--since``, ``--from`` and ``--to``."""
    group = parser.add_argument_group("time window (UTC; times without a zone are taken as UTC)")
    group.add_argument(
        "--since",
        type=duration_ms,
        help=f"the last DURATION, e.g. 6h, 2d (default: {default_since or 'all data'})",
        metavar="DURATION",
    )
    group.add_argument("--from", dest="start", type=_instant, metavar="TIME", help="start, ISO 8601")
    group.add_argument("--to", dest="end", type=_instant, metavar="TIME", help="end (exclusive), ISO 8601")
    parser.set_defaults(default_since=default_since)


def window_from_args(args: argparse.Namespace, now_ms: int) -> Window:
    """The window the options ask for; ``--since`` and ``--from`` exclude each other."""
    if args.since is not None and args.start is not None:
        raise argparse.ArgumentTypeError("give --since or --from, not both")
    if args.since is not None:
        return Window(now_ms - args.since, args.end or now_ms)
    if args.start is not None or args.end is not None:
        if args.start is not None and args.end is not None and args.end <= args.start:
            raise argparse.ArgumentTypeError("--to must be later than --from")
        return Window(args.start, args.end)
    if args.default_since:
        return Window(now_ms - duration_ms(args.default_since), now_ms)
    return Window(None, None)


def iso(ms: int) -> str:
    """UTC ISO 8601 with milliseconds and a Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
