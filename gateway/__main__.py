"""``coldchain gateway --config FILE``: run the gateway until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from coldchain.errors import ConfigError, StoreError
from gateway.config import load_config
from gateway.ingest import Ingest
from gateway.mqtt_link import MqttLink
from gateway.store import open_store
from gateway.worker import Worker

__all__ = ["main"]

log = logging.getLogger("gateway")


def main(argv: list[str], prog: str = "coldchain gateway") -> int:
    """Parse options, check config and database, run; 2 on a config error, 1 when the database is unusable."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML file (see config/gateway.toml)")
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
    store = open_store(config.influxdb)
    try:
        store.check()
    except StoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = Worker(config, store, Ingest(config))
    subscribed = threading.Event()

    def on_subscribed() -> None:
        if not subscribed.is_set():
            subscribed.set()
            print(f"gateway subscribed to {config.mqtt.telemetry_filter} as {config.mqtt.client_id}", flush=True)

    link = MqttLink(config.mqtt, worker.deliver, on_subscribed)
    worker.link = link
    log.info(
        "writing to InfluxDB %s (%s); connecting to %s:%d",
        store.url,
        config.influxdb.api,
        config.mqtt.host,
        config.mqtt.port,
    )
    link.start()
    try:
        worker.run(stop)
    finally:
        link.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
