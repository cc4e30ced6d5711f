"""``python -m gateway.jetstream_main``: the gateway on the NATS cluster (docs/cluster.md).

The same gateway (validation, de-duplication, gaps, alarms, InfluxDB, state
file) reading the replicated telemetry stream through a durable JetStream
consumer instead of a mosquitto session, and publishing storage acks, alarms and
rejects to the cluster over MQTT 3.1.1. The gateway TOML is the usual one; its
``[mqtt]`` login (username, password_file, ca_file, client_id) is used on the
cluster, for NATS and MQTT alike. The nodes are given on the command line for
now (``--nats``, ``--broker``, each once per node).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from adapters.secrets import read_secret
from adapters.service_log import add_log_level, start_log
from coldchain.errors import ConfigError
from gateway.__main__ import _run
from gateway.config import GatewayConfig, load_config
from gateway.jetstream_link import ClusterSettings, JetStreamLink

__all__ = ["main"]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host.strip("[]"), int(port)


def _settings(config: GatewayConfig, args: argparse.Namespace) -> ClusterSettings:
    mqtt = config.mqtt
    password = read_secret(mqtt.password_file) if mqtt.password_file is not None else None
    return ClusterSettings(
        servers=tuple(args.nats),
        brokers=tuple(args.broker),
        durable=args.durable or mqtt.client_id,
        username=mqtt.username,
        password=password,
        password_file=mqtt.password_file,
        ca_file=mqtt.ca_file,
        ack_wait_s=args.ack_wait,
    )


def main(argv: list[str], prog: str = "python -m gateway.jetstream_main") -> int:
    """Parse options, check config and database, run on the cluster; 2 on a config error."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML file (see config/gateway.toml)")
    parser.add_argument("--nats", required=True, action="append", help="NATS URL of a node (once per node)")
    parser.add_argument("--broker", required=True, action="append", type=_address, help="MQTT host:port of a node")
    parser.add_argument("--durable", help="the durable consumer's name (default: [mqtt] client_id)")
    parser.add_argument("--ack-wait", type=float, default=60.0, help="seconds before JetStream redelivers")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_log(args.log_level)
    try:
        config = load_config(args.config)
        settings = _settings(config, args)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot read the [mqtt] password_file: {exc}", file=sys.stderr)
        return 2

    def make_link(config: GatewayConfig, on_subscribed: Callable[[], None]) -> JetStreamLink:
        return JetStreamLink(settings, on_subscribed, config.mqtt.client_id)

    return _run(config, prog, make_link)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
