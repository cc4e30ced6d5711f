"""``coldchain agent --config FILE``: run a crate's edge agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from coldchain.errors import ConfigError
from edge.agent import Agent, Probe
from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import AgentConfig, load_config
from edge.probes.serial_board import SerialBoard

__all__ = ["build_probes", "main"]


def build_probes(config: AgentConfig, clock: Clock) -> list[Probe]:
    """One driver per ``[[probes]]`` entry."""
    probes: list[Probe] = []
    for probe in config.probes:
        if probe.driver == "serial":
            probes.append(SerialBoard(probe, clock))
    return probes


def main(argv: list[str], prog: str = "coldchain agent") -> int:
    """Parse options, check the config, run the agent; 2 on a config error."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="agent TOML file (see config/agent.toml)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = Agent(config, build_probes(config, SYSTEM_CLOCK))
    return agent.run(stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
