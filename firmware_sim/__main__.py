"""``coldchain sim``: the probe board on a pseudo-terminal.

Prints ``device <path>`` as its first line, then speaks protocol v1 on that
device until ``--duration`` simulated seconds have passed or SIGTERM/SIGINT.
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

from firmware_sim.board import Board, BoardSpec
from firmware_sim.link import PtyLink
from firmware_sim.model import Ramp
from firmware_sim.sensor import Probe

__all__ = ["main"]

log = logging.getLogger("coldchain.sim")

_IDLE_POLL_S = 0.05  # how often to look for a listener while nobody has the port open
_BACKPRESSURE_S = 1.0  # faster than real time, wait this long for a slow reader before dropping


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Simulate the crate's probe board on a pseudo-terminal.")
    parser.add_argument(
        "--sensor", action="append", dest="sensors", metavar="NAME", help="probe name (repeatable; default probe1)"
    )
    parser.add_argument(
        "--period",
        type=_positive,
        default=1.0,
        metavar="SECONDS",
        help="sample period in simulated seconds (default 1.0)",
    )
    parser.add_argument(
        "--start", type=float, default=-185.0, metavar="C", help="start temperature in °C (default -185.0)"
    )
    parser.add_argument(
        "--warm-rate",
        type=float,
        default=0.0,
        metavar="C_PER_MIN",
        help="warming rate in °C per simulated minute (0 = steady)",
    )
    parser.add_argument(
        "--warm-after",
        type=_non_negative,
        default=0.0,
        metavar="SECONDS",
        help="warming starts after this many simulated seconds",
    )
    parser.add_argument(
        "--noise", type=_non_negative, default=0.05, metavar="C", help="probe noise, 1 sigma in °C (default 0.05)"
    )
    parser.add_argument(
        "--resolution", type=_positive, default=0.01, metavar="C", help="probe resolution in °C (default 0.01)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="N", help="random seed: the same seed gives the same sentences"
    )
    parser.add_argument(
        "--duration",
        type=_non_negative,
        default=0.0,
        metavar="SECONDS",
        help="stop after this many simulated seconds (0 = until SIGTERM/SIGINT)",
    )
    parser.add_argument(
        "--heartbeat",
        type=_non_negative,
        default=5.0,
        metavar="SECONDS",
        help="heartbeat interval in simulated seconds (0 = none; default 5)",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="X",
        help="simulated seconds per real second (default 1; != 1 implies --clock)",
    )
    parser.add_argument("--clock", action="store_true", help="send the board clock ($CCTIM) before each sample burst")
    parser.add_argument(
        "--epoch-ms", type=int, default=None, metavar="MS", help="board clock at start, UTC epoch ms (default: now)"
    )
    parser.add_argument(
        "--link",
        type=Path,
        default=None,
        metavar="PATH",
        help="also keep a symlink PATH pointing at the current device",
    )
    return parser


def _build_board(args: argparse.Namespace) -> Board:
    names = args.sensors or ["probe1"]
    probes = [Probe(name, noise_c=args.noise, resolution_c=args.resolution) for name in names]
    epoch_ms = args.epoch_ms if args.epoch_ms is not None else time.time_ns() // 1_000_000
    spec = BoardSpec(probes, args.period, args.heartbeat, args.clock or args.speed != 1.0, epoch_ms)
    ramp = Ramp(args.start, args.warm_rate, args.warm_after)
    return Board(spec, ramp.temperature, random.Random(args.seed))  # noqa: S311 -- simulation, not secrets


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


def run(board: Board, link: PtyLink, speed: float, duration_s: float, stop: _Stop) -> None:
    """Pace the board's events to real time (divided by ``speed``) until the duration or a stop."""
    wait_s = _BACKPRESSURE_S if speed != 1.0 else 0.0
    end = duration_s or math.inf
    started = time.monotonic()
    while not stop.requested:
        now = (time.monotonic() - started) * speed
        if now >= end:
            break
        due = board.next_event_s()
        if due <= now:
            for line in board.step()[1]:
                link.write(line, wait_s)
            continue
        timeout = (min(due, end) - now) / speed
        # only a listened-to pty is worth watching: with nobody on it, it reports a hang-up forever
        watched = [stop.read_fd, link.fileno()] if link.listening() else [stop.read_fd]
        if len(watched) == 1:
            timeout = min(timeout, _IDLE_POLL_S)
        ready, _, _ = select.select(watched, [], [], timeout)
        if link.fileno() in ready:
            for line in link.read_lines():
                reply = board.command(line)
                if reply is not None:
                    link.write(reply, wait_s)
                    log.info("command %s answered %s", line.strip().decode(errors="replace"), reply.strip().decode())


def main(argv: list[str], prog: str = "coldchain sim") -> int:
    """Run the simulator; returns the process exit status."""
    args = _parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"{prog}: %(message)s", stream=sys.stderr)
    board = _build_board(args)
    stop = _Stop()
    stop.install()
    link = PtyLink(args.link)
    link.open()
    print(f"device {link.path}", flush=True)
    log.info(
        "board on %s, %d probe(s), period %.3f s, speed %g",
        link.device,
        len(board.spec.probes),
        args.period,
        args.speed,
    )
    try:
        run(board, link, args.speed, args.duration, stop)
    finally:
        link.close()
        link.remove_link()
    log.info("stopped (%d sentence(s) dropped by a slow reader)", link.dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
