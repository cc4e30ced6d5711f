"""``coldchain gateway --config FILE``: run the gateway until SIGTERM or Ctrl-C (``--health``: check a running one)."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.influx_write import open_writer
from adapters.liveness import Liveness
from adapters.sd_notify import Watchdog
from adapters.service_log import add_log_level, start_log
from coldchain.errors import ConfigError, StoreError
from coldchain.helptext import help_text
from coldchain.record.lineprotocol import encode_lines
from gateway.alarming import BOOK_KEY, Alarming
from gateway.archive import EvidenceArchive
from gateway.authenticity import Authenticity
from gateway.config import GatewayConfig, load_config
from gateway.health import Health, read_health
from gateway.ingest import Ingest
from gateway.mqtt_link import MqttLink
from gateway.notify import Notifier
from gateway.statefile import StateFile
from gateway.worker import CrateStore, Worker

__all__ = ["main"]

log = logging.getLogger("gateway")


def _health(config: GatewayConfig) -> int:
    if config.health_file is None:
        print(f"{config.source}: monitoring.health_file is not set: no health to read", file=sys.stderr)
        return 2
    healthy, text = read_health(config.health_file, config.monitor_interval_s)
    print(text)
    return 0 if healthy else 1


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``, whichever thread the kernel hands them to.

    A Python handler runs only on the main thread, which can miss a signal the kernel gave
    another thread (seen here: a SIGTERM ignored for good while the worker waited). So every
    thread blocks them (threads inherit the mask: call this before starting any) and one
    thread waits for them.
    """
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)

    def wait() -> None:
        signal.sigwait(signals)
        stop.set()

    threading.Thread(target=wait, name="signals", daemon=True).start()


# (config, on_subscribed) -> the link the worker reads from and publishes through (``gateway.worker.Link``,
# plus start/stop, connected, failed and a heartbeat): mosquitto's MQTT 5 session, or the NATS cluster's stream
LinkFactory = Callable[[GatewayConfig, Callable[[], None]], Any]
# (config, link) -> where crate state is saved: the state file ([state] file), or the cluster's bucket
StateFactory = Callable[[GatewayConfig, Any], CrateStore | None]


def _mqtt_link(config: GatewayConfig, on_subscribed: Callable[[], None]) -> MqttLink:
    return MqttLink(config.mqtt, on_subscribed)


def _state_file(config: GatewayConfig, link: Any) -> StateFile | None:
    return StateFile(config.state_file) if config.state_file is not None else None


def _run(
    config: GatewayConfig, prog: str, make_link: LinkFactory = _mqtt_link, make_state: StateFactory = _state_file
) -> int:
    """The composition root: every part is made here, given what it needs, and started; then run until stopped."""
    stop = threading.Event()
    _stop_on_signals(stop)
    store = open_writer(config.influxdb)  # the writer thread's
    try:
        store.check(config.influxdb.startup_wait_s)
    except StoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    # the network thread (which judges and publishes alarms) shares the GIL with the writer and the
    # clock: hand it over within 1 ms instead of 5, so an alarm is not kept waiting behind them
    sys.setswitchinterval(0.001)
    subscribed = threading.Event()
    watchdog = Watchdog()

    def on_subscribed() -> None:
        if not subscribed.is_set():
            subscribed.set()
            print(f"gateway subscribed to {config.mqtt.telemetry_filter} as {config.mqtt.client_id}", flush=True)
            watchdog.ready()  # database checked, state restored, messages flowing in: it does its job now

    link = make_link(config, on_subscribed)
    try:
        state = make_state(config, link)
    except (OSError, sqlite3.Error) as exc:
        print(f"{prog}: cannot open the state file {config.state_file}: {exc} (check [state] file)", file=sys.stderr)
        return 1
    # the clock's thread writes alarm points of its ticks and the gateway's own figures on a connection of its own
    clock_store = open_writer(config.influxdb)
    notifier = Notifier(config.notify)  # its channels' outbox files are opened; delivery starts below
    alarming = Alarming(
        config, notifier, publish=link.publish, write=lambda lines: clock_store.write(encode_lines(lines))
    )
    security = config.security
    authenticity = Authenticity(security) if security.keys_dir is not None else None
    # the cluster's bucket keeps each crate's part of the alarm book with the crate
    per_crate = state is not None and not isinstance(state, StateFile)
    ingest = Ingest(config, alarming, authenticity, archiving=security.archive is not None, crate_books=per_crate)
    if isinstance(state, StateFile):
        saved = state.load()
        alarming.restore(saved, int(time.time() * 1000))
        saved.pop(BOOK_KEY, None)
        ingest.restore(saved, int(time.time() * 1000))
        log.info("resumed %d crates from %s", len(ingest.crates), config.state_file)
    archive = EvidenceArchive(security.archive) if security.archive is not None else None
    worker = Worker(config, store, ingest, link, state=state, archive=archive)
    worker.every_tick(lambda now: stop.set() if link.failed.is_set() else None)
    # alarms raised by the clock (stale, offline, escalation) are published and written on their own
    worker.every_tick(lambda now: alarming.tick(now, int(time.time() * 1000), worker.deaf), exclusive=True)
    notifier.start()
    health = Health(
        worker,
        clock_store,
        config.mqtt.client_id,
        config.monitor_interval_s,
        config.health_file,
        connected=link.connected.is_set,
    )
    worker.every_tick(health.tick)
    # pinged from the clock (this thread) only while the network thread and the writer go round too
    liveness = Liveness(watchdog, [link.heartbeat, worker.writer_heartbeat])
    worker.every_tick(lambda now: liveness.check())
    log.info("InfluxDB %s (%s API); broker %s:%d", store.url, config.influxdb.api, config.mqtt.host, config.mqtt.port)
    link.start(worker)
    try:
        worker.run(stop)
    finally:
        watchdog.stopping()
        link.stop()
        notifier.stop()
        store.close()
        clock_store.close()
        if archive is not None:
            archive.close()
        if isinstance(state, StateFile):
            state.close()
    return 1 if worker.failed or link.failed.is_set() else 0


def main(argv: list[str], prog: str = "coldchain gateway") -> int:
    """Parse options, check config and database, run; 2 on a config error, 1 when the database is unusable."""
    parser = argparse.ArgumentParser(prog=prog, description=help_text(__doc__))
    parser.add_argument("--config", required=True, type=Path, help="gateway TOML file (see config/gateway.toml)")
    parser.add_argument("--health", action="store_true", help="print the running gateway's health; exit 1 if unhealthy")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_log(args.log_level)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return _health(config) if args.health else _run(config, prog)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
