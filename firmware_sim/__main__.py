"""``coldchain sim``: the probe board on a pseudo-terminal.

Prints ``device <path>`` as its first line (and again whenever a ``disconnect``
fault re-creates the device), then speaks protocol v1 on that device until
``--duration`` simulated seconds have passed or SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import select
import signal
import sys
import time
from pathlib import Path

from coldchain.errors import ConfigError
from coldchain.settings.argtypes import finite, non_negative, positive
from coldchain.topics import IDENTIFIER_RULE, valid_identifier
from firmware_sim.board import Board, BoardSpec
from firmware_sim.link import PtyLink
from firmware_sim.model import Ramp
from firmware_sim.scenario import paced_heartbeat, read_scenario
from firmware_sim.sensor import Probe

__all__ = ["main"]

log = logging.getLogger("coldchain.sim")

_IDLE_POLL_S = 0.05  # how often to look for a listener while nobody has the port open
_BACKPRESSURE_S = 1.0  # faster than real time, wait this long for a slow reader before dropping
_OPENING_S = 0.5  # how long a reader that just opened the port may take to finish opening it
_DRAIN_S = 2.0  # at the end of a run, wait this long for the reader to take what was sent
_TRACE_OPTIONS = ("sensors", "start", "warm_rate", "warm_after", "noise", "resolution")


def _epoch_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if not 0 < value < 2**53:
        raise argparse.ArgumentTypeError(f"must be a UTC epoch in milliseconds, got {text}")
    return value


def _sensor(text: str) -> str:
    if not valid_identifier(text):
        raise argparse.ArgumentTypeError(f"{text!r} must be {IDENTIFIER_RULE}")
    return text


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Simulate the crate's probe board on a pseudo-terminal (protocol: docs/firmware-protocol.md). "
        "All durations are simulated seconds. 'coldchain sim fleet --help': many crates straight to MQTT; "
        "'coldchain sim gps --help': a GPS receiver along a scenario's route.",
    )
    add = parser.add_argument
    add("--scenario", type=Path, metavar="FILE", help="simulate a shipment from a scenario file (config/scenarios/)")
    add(
        "--sensor",
        action="append",
        dest="sensors",
        type=_sensor,
        metavar="NAME",
        help="probe name (repeatable; default probe1)",
    )
    add("--period", type=positive, metavar="SECONDS", help="sample period (default 1.0, or the scenario's)")
    add("--start", type=finite, metavar="C", help="start temperature in °C (default -185.0)")
    add("--warm-rate", type=finite, metavar="C_PER_MIN", help="warming rate in °C per minute (default 0: steady)")
    add("--warm-after", type=non_negative, metavar="SECONDS", help="warming starts after this long (default 0)")
    add("--noise", type=non_negative, metavar="C", help="probe noise, 1 sigma in °C (default 0.05)")
    add("--resolution", type=positive, metavar="C", help="probe resolution in °C (default 0.01)")
    add("--seed", type=int, metavar="N", help="random seed: the same seed and options give the same bytes")
    add("--duration", type=non_negative, metavar="SECONDS", help="stop after this long (0: until SIGTERM/SIGINT)")
    add("--heartbeat", type=non_negative, metavar="SECONDS", help="heartbeat interval (0: none; default 5)")
    add("--speed", type=positive, default=1.0, metavar="X", help="simulated seconds per real second (default 1)")
    add("--clock", action="store_true", help="send the board clock ($CCTIM) before each burst (on when --speed != 1)")
    add("--epoch-ms", type=_epoch_ms, metavar="MS", help="board clock at start, UTC epoch ms (default: now)")
    add("--link", type=Path, metavar="PATH", help="keep a symlink PATH pointing at the current device")
    add(
        "--wait-for-reader",
        action="store_true",
        help="start the simulated clock when a reader opens the device (always on when --speed != 1)",
    )
    return parser


def _trace_board(args: argparse.Namespace, epoch_ms: int, clock: bool) -> tuple[Board, float]:
    noise = 0.05 if args.noise is None else args.noise
    resolution = args.resolution or 0.01
    probes = [Probe(name, noise_c=noise, resolution_c=resolution) for name in args.sensors or ["probe1"]]
    heartbeat = 5.0 if args.heartbeat is None else args.heartbeat
    spec = BoardSpec(probes, args.period or 1.0, heartbeat, clock, epoch_ms)
    ramp = Ramp(-185.0 if args.start is None else args.start, args.warm_rate or 0.0, args.warm_after or 0.0)
    rng = random.Random(args.seed)  # noqa: S311 -- simulation, not secrets
    return Board(spec, ramp.temperature, rng), args.duration or 0.0


def _scenario_board(args: argparse.Namespace, epoch_ms: int, clock: bool) -> tuple[Board, float]:
    scenario = read_scenario(args.scenario)
    heartbeat = args.heartbeat if args.heartbeat is not None else paced_heartbeat(scenario.heartbeat_s, args.speed)
    board = scenario.board(args.seed, epoch_ms, clock, args.period, heartbeat)
    log.info("scenario %s: %s", scenario.name, scenario.description)
    return board, scenario.duration_s if args.duration is None else args.duration


class _Stop:
    """SIGTERM/SIGINT end the run cleanly; a self-pipe wakes the wait at once."""

    def __init__(self) -> None:
        self.requested = False
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        signal.set_wakeup_fd(self.write_fd)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True


def _follow_faults(board: Board, link: PtyLink, now: float) -> bool:
    """Take the device away during a ``disconnect`` fault and bring it back (a new pty) after; True then."""
    up = board.link_up(now)
    if not up and link.is_open:
        log.warning("disconnect: device %s removed at t=%.1f s", link.device, now)
        link.close()
    elif up and not link.is_open:
        link.open()
        log.warning("disconnect over: board back on %s at t=%.1f s", link.device, now)
        print(f"device {link.path}", flush=True)
        return True
    return False


def _await_reader(link: PtyLink, stop: _Stop) -> None:
    while not stop.requested and not link.listening():
        select.select([stop.read_fd], [], [], _IDLE_POLL_S)
    if not stop.requested:
        # the device counts as open from the reader's open() on, but pyserial's last step of
        # opening is to flush the input: sentences sent in between are lost (a loaded e2e run
        # stored 718 of 720 readings), so let the reader finish opening first
        select.select([stop.read_fd], [], [], _OPENING_S)


def run(board: Board, link: PtyLink, speed: float, duration_s: float, stop: _Stop, *, wait: bool = False) -> None:
    """Pace the board's events to real time (divided by ``speed``) until the duration or a stop.

    With ``wait`` the simulated clock starts only once a reader has opened the device,
    and stands still after a ``disconnect`` until a reader has opened the new one.
    """
    wait_s = _BACKPRESSURE_S if speed != 1.0 else 0.0
    end = duration_s or math.inf
    if wait:
        _await_reader(link, stop)
    started = time.monotonic()
    while not stop.requested:
        now = (time.monotonic() - started) * speed
        due = board.next_event_s()
        if due >= end and now >= end:
            break
        if due <= now and due < end:  # behind schedule (a slow reader), catch up before ending
            at, lines = board.step()
            if _follow_faults(board, link, at) and wait:  # the simulated clock waits for the reader to come back
                paused = time.monotonic()
                _await_reader(link, stop)
                started += time.monotonic() - paused
            for line in lines:
                link.write(line, wait_s)
            continue
        timeout = (min(due, end) - now) / speed
        # only a listened-to pty is worth watching: with nobody on it, it reports a hang-up forever
        watched = [stop.read_fd, link.fileno()] if link.listening() else [stop.read_fd]
        if len(watched) == 1:
            timeout = min(timeout, _IDLE_POLL_S)
        ready, _, _ = select.select(watched, [], [], timeout)
        if link.is_open and link.fileno() in ready:
            for line in link.read_lines():
                reply = board.command(line)
                if reply is not None:
                    link.write(reply, wait_s)
                    log.info("command %s answered %s", line.strip().decode(errors="replace"), reply.strip().decode())
    if not stop.requested and not link.drain(_DRAIN_S):
        log.warning("the reader did not take the last sentences within %.0f s", _DRAIN_S)


def main(argv: list[str], prog: str = "coldchain sim") -> int:
    """Run the simulator (or, with ``fleet`` / ``gps`` first, those); returns the process exit status."""
    if argv[:1] == ["fleet"]:
        from firmware_sim import fleet  # noqa: PLC0415 -- paho is needed by the fleet only

        return fleet.main(argv[1:], f"{prog} fleet")
    if argv[:1] == ["gps"]:
        from firmware_sim import gps_sim  # noqa: PLC0415 -- like the fleet: its own command

        return gps_sim.main(argv[1:], f"{prog} gps")
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.scenario is not None:
        clashing = [name for name in _TRACE_OPTIONS if getattr(args, name) is not None]
        if clashing:
            options = ", ".join("--" + name.rstrip("s").replace("_", "-") for name in clashing)
            parser.error(f"{options} cannot be combined with --scenario (the scenario file sets them)")
    if args.link is not None and not args.link.parent.is_dir():
        parser.error(f"--link {args.link}: {args.link.parent} is not an existing directory")
    logging.basicConfig(level=logging.INFO, format=f"{prog}: %(message)s", stream=sys.stderr)
    epoch_ms = args.epoch_ms if args.epoch_ms is not None else time.time_ns() // 1_000_000
    clock = args.clock or args.speed != 1.0
    try:
        board, duration = (_scenario_board if args.scenario else _trace_board)(args, epoch_ms, clock)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    stop = _Stop()
    stop.install()
    link = PtyLink(args.link)
    link.open()
    print(f"device {link.path}", flush=True)
    log.info(
        "board on %s: %d probe(s), period %g s, speed %g, %s",
        link.device,
        len(board.spec.probes),
        board.period_s,
        args.speed,
        f"for {duration:g} s" if duration else "until stopped",
    )
    try:
        run(board, link, args.speed, duration, stop, wait=args.wait_for_reader or args.speed != 1.0)
    finally:
        link.close()
        link.remove_link()
    log.info("stopped (%d sentence(s) dropped by a slow reader)", link.dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
