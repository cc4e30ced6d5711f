"""``coldchain agent --config FILE``: run a crate's edge agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from adapters.service_log import add_log_level, start_log
from coldchain.errors import ConfigError
from coldchain.helptext import help_text
from edge.agent import Agent, Probe
from edge.clock import Clock, system_clock
from edge.config import AgentConfig, SerialProbeConfig, W1ProbeConfig, load_config
from edge.probes.accel import Adxl345
from edge.probes.ds18b20 import DS18B20
from edge.probes.gps import GpsReceiver
from edge.probes.mcp3008 import AdcThermometer
from edge.probes.polled import PolledProbes, Sensor
from edge.probes.serial_board import SerialBoard

__all__ = ["build_probes", "main"]


def build_probes(config: AgentConfig, clock: Clock, pin_factory: Any = None) -> list[Probe]:
    """A reader per serial board, GPS receiver and accelerometer; polled drivers (DS18B20, ADC) share one clock."""
    probes: list[Probe] = []
    polled: list[Sensor] = []
    for probe in config.probes:
        if isinstance(probe, SerialProbeConfig):
            probes.append(SerialBoard(probe, clock))
        elif isinstance(probe, W1ProbeConfig):
            polled.append(DS18B20(probe.devices, probe.devices_dir))
        else:
            polled.append(AdcThermometer(probe.channels, probe.curve, probe.series_ohms, probe.spi_device, pin_factory))
    if polled:
        probes.append(PolledProbes(polled, config.sample_period_s, clock))
    if config.gps is not None:
        probes.append(GpsReceiver(config.gps, clock))
    if config.accelerometer is not None:
        probes.append(Adxl345(config.accelerometer, clock))
    return probes


def main(argv: list[str], prog: str = "coldchain agent") -> int:
    """Parse options, check the config, run the agent; 2 on a config error."""
    parser = argparse.ArgumentParser(prog=prog, description=help_text(__doc__))
    parser.add_argument("--config", required=True, type=Path, help="agent TOML file (see config/agent.toml)")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_log(args.log_level)
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
    clock = system_clock()
    agent = Agent(config, build_probes(config, clock), clock)
    return agent.run(stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
