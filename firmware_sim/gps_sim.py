"""``coldchain sim gps``: a GPS receiver riding a scenario's ``[route]``, on its own pseudo-terminal.

Prints ``device <path>`` first, waits for a reader (the agent's ``[gps] port``), then
sends the route's NMEA (``$GPRMC``, ``$GPGGA``) once per ``--interval`` simulated seconds,
paced by ``--speed``, until the scenario's duration (or ``--duration``) or SIGTERM/SIGINT.
Run beside ``coldchain sim --scenario`` with the same ``--speed`` and ``--epoch-ms``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from coldchain.errors import ConfigError
from coldchain.settings.argtypes import non_negative, positive
from firmware_sim.link import PtyLink
from firmware_sim.scenario import read_scenario

__all__ = ["main"]

log = logging.getLogger("coldchain.sim.gps")

_IDLE_POLL_S = 0.05
_DRAIN_S = 2.0


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Simulate a GPS receiver (NMEA 0183) along a scenario's [route] on a pseudo-terminal."
    )
    add = parser.add_argument
    add("--scenario", type=Path, required=True, metavar="FILE", help="a scenario file with a [route]")
    add("--speed", type=positive, default=1.0, metavar="X", help="simulated seconds per real second (default 1)")
    add("--interval", type=positive, default=1.0, metavar="SECONDS", help="one fix per this long (default 1)")
    add("--duration", type=non_negative, metavar="SECONDS", help="stop after this long (default: the scenario's)")
    add("--epoch-ms", type=int, metavar="MS", help="UTC epoch ms of the route's start (default: now)")
    add("--link", type=Path, metavar="PATH", help="keep a symlink PATH pointing at the device")
    return parser


def main(argv: list[str], prog: str = "coldchain sim gps") -> int:
    """Run the simulated receiver; 2 for a bad scenario or one without a route."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.epoch_ms is not None and not 0 < args.epoch_ms < 2**53:
        parser.error(f"--epoch-ms must be a UTC epoch in milliseconds, got {args.epoch_ms}")
    logging.basicConfig(level=logging.INFO, format=f"{prog}: %(message)s", stream=sys.stderr)
    try:
        scenario = read_scenario(args.scenario)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if scenario.route is None:
        print(f"{prog}: {args.scenario}: the scenario has no [route] to follow", file=sys.stderr)
        return 2
    route = scenario.route
    epoch_ms = args.epoch_ms if args.epoch_ms is not None else time.time_ns() // 1_000_000
    end = scenario.duration_s if args.duration is None else args.duration
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    link = PtyLink(args.link)
    link.open()
    sent = 0
    print(f"device {link.path}", flush=True)
    try:
        while not stop.is_set() and not link.listening():  # the route starts when the agent listens
            stop.wait(_IDLE_POLL_S)
        started = time.monotonic()
        while not stop.is_set() and (end == 0 or sent * args.interval <= end):
            t = sent * args.interval
            stop.wait(max(0.0, started + t / args.speed - time.monotonic()))
            if stop.is_set():
                break
            link.write(b"".join(route.nmea(t, epoch_ms)), 1.0)
            sent += 1
        if not stop.is_set():
            link.drain(_DRAIN_S)
    finally:
        link.close()
        link.remove_link()
    log.info("stopped after %d second(s) of NMEA", sent)
    return 0
