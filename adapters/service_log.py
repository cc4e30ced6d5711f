"""The services' log: one ``--log-level`` option and one format for the agent, the gateways and the board.

Lines go to standard error, where systemd's journal takes them (and the tests read them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Final

__all__ = ["LOG_LEVELS", "add_log_level", "start_log"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """The ``--log-level`` option every service takes (default INFO)."""
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, help="the least severe line logged")


def start_log(level: str) -> None:
    """Log from ``level`` up, time-stamped and named, to standard error."""
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
