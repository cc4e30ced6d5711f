"""``coldchain alerts``: the alarms that are active now, and those that still need review.

Lists every alarm whose retained state is ``active`` or ``acknowledged``, the most
severe first and, within a severity, the longest-running first (escalated ones say so).
Then, per shipment, the alarms that need review: excursions that cleared before anyone
acknowledged them, late ones (they happened while the crate was offline) included,
until a person reviews them (``coldchain ack CRATE RULE SENSOR --by NAME --note TEXT``).
``--active-only`` leaves that section out. ``--follow`` then prints each transition as it
happens until Ctrl-C; ``--json`` prints the alarm payloads for scripts (an array; with
``--follow``, one object per line).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from cli.mqtt_read import BrokerError, Inbound, Subscription, add_broker_arguments, broker_settings
from coldchain.errors import ConfigError, WireFormatError
from coldchain.helptext import help_text
from coldchain.settings.argtypes import positive
from coldchain.topics import ROOT, parse_topic, reserved_login
from coldchain.wire import AlarmView, decode_alarm, decode_status

__all__ = ["main"]

ALARM_FILTER = f"{ROOT}/alarms/#"
STATUS_FILTER = f"{ROOT}/crates/+/status"
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _text(value: object) -> str:
    """A payload's text as one terminal-safe line: control characters shown escaped, never obeyed."""
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _optional_text(alarm: AlarmView, name: str) -> str:
    """An optional text field of the alarm, or '' when it carries none (or something that is no text)."""
    value = alarm.optional(name)
    return _text(value) if isinstance(value, str) else ""


def _acknowledged_by(alarm: AlarmView) -> str:
    """Who acknowledged it, when the message says so."""
    by = alarm.body.get("by")  # an older engine's name for it
    if isinstance(by, str) and by:
        return _text(by)
    return _optional_text(alarm, "acknowledged_by")


def _sort_key(alarm: AlarmView) -> tuple[int, int, str]:
    """Most severe first, then oldest first."""
    return (SEVERITY_RANK[alarm.severity], alarm.started_ts, alarm.topic)


def _utc(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # a valid epoch ms (below 2^53) past the year 9999
        return f"epoch ms {ms}"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _celsius(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _table(alarms: list[AlarmView], offline: dict[str, int], now_ms: int) -> str:
    header = ("SEVERITY", "STATE", "CRATE", "RULE", "SENSOR", "VALUE °C", "LIMIT °C", "SINCE (UTC)", "AGE", "ACK BY")
    rows = [header]
    for a in alarms:
        crate = a.crate + (f" [{shipment}]" if (shipment := _optional_text(a, "shipment")) else "")
        crate += " (offline)" if a.crate in offline else ""
        state = a.state + (" (late)" if a.optional("late") else "") + (" ESCALATED" if a.optional("escalated") else "")
        rows.append(
            (
                a.severity,
                state,
                crate,
                a.rule,
                a.sensor,
                _celsius(a.value_c),
                _celsius(a.threshold_c),
                _utc(a.started_ts),
                _age((now_ms - a.started_ts) / 1000),
                _acknowledged_by(a) or "-",
            )
        )
    return _columns(rows)


def _shipment_heading(alarm: AlarmView) -> str:
    shipment = _optional_text(alarm, "shipment")
    if not shipment:
        return "no shipment"
    route = f"{_optional_text(alarm, 'origin') or '?'} -> {_optional_text(alarm, 'destination') or '?'}"
    known = [part for part in (_optional_text(alarm, "product"), "" if route == "? -> ?" else route) if part]
    return f"shipment {shipment}" + (f" ({', '.join(known)})" if known else "")


def _review(alarms: list[AlarmView], now_ms: int) -> str:
    """The needs-review section: per shipment, each excursion nobody acknowledged, from its start to its end."""
    lines = [
        f"NEEDS REVIEW: {len(alarms)} excursion{'s' if len(alarms) != 1 else ''} cleared before anyone"
        " acknowledged them (late: it happened while the crate was offline)"
    ]
    groups: dict[str, list[AlarmView]] = {}
    for alarm in alarms:
        groups.setdefault(_shipment_heading(alarm), []).append(alarm)
    for heading in sorted(groups, key=lambda h: (h == "no shipment", h)):
        lines.append(f"{heading}:")
        rows: list[tuple[str, ...]] = [
            ("  SEVERITY", "CRATE", "RULE", "SENSOR", "LIMIT °C", "FROM (UTC)", "TO (UTC)", "")
        ]
        for a in groups[heading]:
            ended = a.optional("ended_ts")
            end = ended if isinstance(ended, int) and not isinstance(ended, bool) else a.ts
            rows.append((
                f"  {a.severity}", a.crate, a.rule, a.sensor, _celsius(a.threshold_c), _utc(a.started_ts), _utc(end),
                "late" if a.optional("late") is True else f"{_age((now_ms - end) / 1000)} ago",
            ))  # fmt: skip
        lines.append(_columns(rows))
    lines.append("review one once looked at: coldchain ack CRATE RULE SENSOR --by NAME --note TEXT")
    return "\n".join(lines)


def _transition(alarm: AlarmView, previous: AlarmView | None = None) -> str:
    verb = {"active": "RAISED", "acknowledged": "ACKED", "cleared": "CLEARED"}.get(alarm.state, alarm.state.upper())
    if previous is not None and previous.needs_review and not alarm.needs_review:
        verb = "REVIEWED"
    elif alarm.state == "active" and alarm.optional("escalated") and not (previous and previous.optional("escalated")):
        verb = "ESCALATED"
    by = f" by {who}" if (who := _acknowledged_by(alarm)) else ""
    note = f" ({text})" if (text := _optional_text(alarm, "note")) else ""
    return (
        f"{_utc(alarm.ts)}  {verb:<7} {alarm.severity:<8} {alarm.crate} {alarm.rule} {alarm.sensor}  "
        f"{_celsius(alarm.value_c)} °C (limit {_celsius(alarm.threshold_c)}){by}{note}"
    )


class Board:
    """What the retained topics say right now: alarms by topic, and which crates are offline."""

    def __init__(self, err: TextIO) -> None:
        self.alarms: dict[str, AlarmView] = {}
        self.offline: dict[str, int] = {}
        self.unreadable = 0
        self._err = err

    def take(self, message: Inbound) -> tuple[str, Any] | None:
        """Apply one message; return ("alarm", AlarmView) or ("status", text) when something changed."""
        try:
            if message.topic.startswith(f"{ROOT}/crates/"):
                return self._status(message)
            return self._alarm(message)
        except WireFormatError as exc:
            self._ignored(message, str(exc))
        except Exception as exc:  # one message never stops the listing: say what happened, go on
            self._ignored(message, f"internal error {type(exc).__name__}: {_text(exc)[:200]}")
            traceback.print_exc(file=self._err)
        return None

    def _ignored(self, message: Inbound, problem: str) -> None:
        self.unreadable += 1
        kind = "status" if message.topic.startswith(f"{ROOT}/crates/") else "alarm"
        print(f"alerts: ignored unreadable {kind} message on {_text(message.topic)[:200]}: {problem}", file=self._err)

    def _alarm(self, message: Inbound) -> tuple[str, Any] | None:
        alarm = decode_alarm(message.topic, message.payload) if message.payload else None
        if alarm is None:  # an empty payload: the retained alarm was deleted
            gone = self.alarms.pop(message.topic, None)
            return None if gone is None else ("deleted", gone)
        previous = self.alarms.get(message.topic)
        self.alarms[message.topic] = alarm
        if previous is not None and previous.body == alarm.body:
            return None  # the broker re-sent retained state after a reconnect
        return ("alarm", (alarm, previous))

    def _status(self, message: Inbound) -> tuple[str, Any] | None:
        crate = parse_topic(message.topic).crate
        if reserved_login(crate):
            return None  # a staff or service login's own status topic: never a crate
        was_offline = crate in self.offline
        if not message.payload:  # the retained status was deleted: nothing says offline any more
            self.offline.pop(crate, None)
        elif (status := decode_status(message.topic, message.payload)).state == "offline":
            self.offline[crate] = status.ts
        else:
            self.offline.pop(crate, None)
        if was_offline == (crate in self.offline):
            return None
        return ("status", f"crate {crate} is {'offline' if crate in self.offline else 'online'}")

    def listing(self, include_cleared: bool) -> list[AlarmView]:
        """The alarms to show, most urgent first."""
        shown = [a for a in self.alarms.values() if include_cleared or a.is_open]
        return sorted(shown, key=_sort_key)

    def awaiting_review(self) -> list[AlarmView]:
        """Alarms that cleared before anyone acknowledged them, most severe then oldest first."""
        return sorted((a for a in self.alarms.values() if a.needs_review), key=_sort_key)


def _collect(subscription: Subscription, board: Board, quiet_s: float, limit_s: float) -> None:
    """Take retained messages until none came for ``quiet_s`` (or ``limit_s`` passed)."""
    deadline = time.monotonic() + limit_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = subscription.inbox.get(timeout=min(quiet_s, left))
        except queue.Empty:
            return
        if isinstance(item, Inbound):
            board.take(item)


def _follow(subscription: Subscription, board: Board, as_json: bool, out: TextIO, err: TextIO) -> None:
    connected = True
    while True:
        item = subscription.inbox.get()
        if not isinstance(item, Inbound):
            if item[0] == "disconnected" and connected:
                print(f"alerts: connection to {subscription.settings.address} lost, reconnecting...", file=err)
            elif item[0] == "subscribed" and not connected:
                print("alerts: reconnected", file=err)
            connected = item[0] != "disconnected"
            continue
        change = board.take(item)
        if change is None:
            continue
        kind, what = change
        if as_json and kind == "alarm":
            print(json.dumps(what[0].body, sort_keys=True), file=out, flush=True)
        elif not as_json:
            if kind == "alarm":
                text = _transition(*what)
            elif kind == "deleted":
                text = f"retained alarm {what.topic} was deleted"
            else:
                text = f"{_utc(int(time.time() * 1000))}  {what}"
            print(text, file=out, flush=True)


def main(argv: list[str], prog: str = "coldchain alerts") -> int:
    """List active alarms (and with --follow, stream transitions)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--follow", "-f", action="store_true", help="then print transitions live until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="alarm payloads as JSON, for scripts")
    parser.add_argument("--all", action="store_true", help="include cleared alarms still retained")
    parser.add_argument(
        "--active-only", action="store_true", help="leave out the alarms that need review (cleared unacknowledged)"
    )
    parser.add_argument(
        "--quiet-period",
        type=positive,
        default=0.3,
        metavar="S",
        help="retained state is complete after S s of silence",
    )
    add_broker_arguments(parser)
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        subscription = Subscription(broker_settings(args), [ALARM_FILTER, STATUS_FILTER])
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=err)
        return 2
    try:
        subscription.open()
    except BrokerError as exc:
        print(f"{prog}: {exc}", file=err)
        return 1
    board = Board(err)
    try:
        _collect(subscription, board, args.quiet_period, limit_s=10.0)
        alarms = board.listing(args.all)
        review = [] if args.active_only or args.all else board.awaiting_review()
        now_ms = int(time.time() * 1000)
        if args.json and args.follow:
            for alarm in alarms + review:
                print(json.dumps(alarm.body, sort_keys=True), file=out)
        elif args.json:
            print(json.dumps([a.body for a in alarms + review], indent=2, sort_keys=True), file=out)
        elif alarms:
            print(_table(alarms, board.offline, now_ms), file=out)
        else:
            print(f"no {'retained' if args.all else 'active'} alarms on {subscription.settings.address}", file=out)
        if review and not args.json:
            print(f"\n{_review(review, now_ms)}", file=out)
        if not args.json and board.offline:
            crates = ", ".join(f"{c} (since {_utc(ts)})" if ts else c for c, ts in sorted(board.offline.items()))
            print(f"offline crates: {crates}", file=out)
        out.flush()
        if args.follow:
            if not args.json:
                print("following alarm transitions (Ctrl-C to stop)...", file=err, flush=True)
            _follow(subscription, board, args.json, out, err)
    except KeyboardInterrupt:
        pass
    finally:
        subscription.close()
    return 0
