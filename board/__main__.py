"""``coldchain board``: the live alert board for logistics staff, in the browser.

``coldchain board --config board.toml`` serves the board; ``coldchain board
hash-password`` makes a ``[[auth.users]]`` entry for its config (the password
is read from the terminal, or from standard input when that is not a terminal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from adapters.liveness import Liveness
from adapters.sd_notify import Watchdog
from adapters.service_log import add_log_level, start_log
from board.app import make_app
from board.auth import hash_password
from board.broker import BrokerLink
from board.config import BoardConfig, load_config
from board.hub import Hub, Inbox
from board.running import Board
from board.state import BoardState
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from coldchain.topics import IDENTIFIER_RULE, valid_identifier

__all__ = ["main"]

log = logging.getLogger("coldchain.board")
MIN_PASSWORD = 10


async def feed_watchdog(liveness: Liveness) -> None:
    """Ping systemd from the event loop while the broker thread goes round too (a stuck loop stops both)."""
    period_s = liveness.watchdog.period_s
    while True:
        liveness.check()
        await asyncio.sleep(period_s / 4 if period_s else 1.0)


async def serve(config: BoardConfig) -> None:
    """Run the board until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    hub = Hub(BoardState(config.crates, config.default_profile))
    link = BrokerLink(config.mqtt, Inbox(loop, hub.apply).put)
    board = Board(config, hub, link)
    runner = web.AppRunner(make_app(board), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.http.host, config.http.port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    link.start()
    print(f"board listening on http://{config.http.host}:{config.http.port}/", flush=True)
    watchdog = Watchdog()
    watchdog.ready()  # pages are served; the broker link shows on them while it connects
    feeder = asyncio.create_task(feed_watchdog(Liveness(watchdog, [link.heartbeat])))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        watchdog.stopping()
        feeder.cancel()
        link.stop()
        await runner.cleanup()


def _hash_password(args: argparse.Namespace, prog: str) -> int:
    if not valid_identifier(args.user):
        print(f"{prog}: user name {args.user!r} must be {IDENTIFIER_RULE}", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print(f"{prog}: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD:
        print(f"{prog}: use at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    print(f'[[auth.users]]\nname = "{args.user}"\npassword_hash = "{hash_password(password)}"')
    return 0


def main(argv: list[str], prog: str = "coldchain board") -> int:
    """Serve the board, or make a password entry for its config."""
    if argv[:1] == ["hash-password"]:
        parser = argparse.ArgumentParser(prog=f"{prog} hash-password", description="make a [[auth.users]] entry")
        parser.add_argument("--user", required=True, help="the staff member's sign-in name")
        return _hash_password(parser.parse_args(argv[1:]), prog)
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, type=Path, help="the board's TOML file (see config/board.toml)")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_log(args.log_level)
    try:
        config = load_config(args.config)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot listen on {config.http.host}:{config.http.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
