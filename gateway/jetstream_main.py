"""``python -m gateway.jetstream_main``: the gateway on the NATS cluster (docs/cluster.md).

The same gateway (validation, de-duplication, gaps, alarms, InfluxDB) reading
the partitions of the replicated telemetry stream it holds leases on, keeping
each crate's state in the cluster's key-value bucket instead of a state file,
and publishing storage acks, alarms and rejects to the cluster over MQTT 3.1.1.
The gateway TOML is the usual one plus a ``[cluster]`` table (the nodes, the
partitions, the lease TTL); its ``[mqtt]`` login (username, password_file,
ca_file) is used on the cluster for NATS and MQTT alike, and its ``client_id`` is
the gateway's id in the fleet (unique per gateway).
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
from gateway.cluster_config import ClusterConfig, ClusterLogin
from gateway.config import GatewayConfig, load_config
from gateway.crate_kv import CrateKv
from gateway.jetstream_link import JetStreamLink

__all__ = ["main"]


def _login(config: GatewayConfig) -> ClusterLogin:
    mqtt = config.mqtt
    password = read_secret(mqtt.password_file) if mqtt.password_file is not None else None
    return ClusterLogin(mqtt.client_id, mqtt.username, password, mqtt.password_file, mqtt.ca_file)


def main(argv: list[str], prog: str = "python -m gateway.jetstream_main") -> int:
    """Parse options, check config and database, run on the cluster; 2 on a config error."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML file with [cluster]")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_log(args.log_level)
    try:
        config = load_config(args.config)
        login = _login(config)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot read the [mqtt] password_file: {exc}", file=sys.stderr)
        return 2
    if config.cluster is None:
        print(f"{prog}: {config.source}: [cluster] is required (the nodes, see docs/cluster.md)", file=sys.stderr)
        return 2
    cluster: ClusterConfig = config.cluster

    def make_link(config: GatewayConfig, on_subscribed: Callable[[], None]) -> JetStreamLink:
        return JetStreamLink(cluster, login, on_subscribed)

    def crate_state(config: GatewayConfig, link: JetStreamLink) -> CrateKv:
        return link.crate_state

    return _run(config, prog, make_link, crate_state)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
