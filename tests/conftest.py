"""Fixtures that start real services: a private mosquitto and a private influxd on free ports."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.services import InfluxDB, Mosquitto

_names = itertools.count(1)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the session; tests keep apart by using their own crate ids."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """A factory of brokers of the test's own, for tests that stop or reconfigure them."""
    started: list[Mosquitto] = []

    def make(extra_conf: str = "") -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{len(started)}", extra_conf=extra_conf).start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One influxd for the session; tests keep apart by using a database of their own."""
    server = InfluxDB(tmp_path_factory.mktemp("influxd")).start()
    yield server
    server.stop()


@pytest.fixture
def make_influxdb(tmp_path: Path) -> Iterator[Callable[[], InfluxDB]]:
    """A factory of influxd servers of the test's own, for tests that stop them."""
    started: list[InfluxDB] = []

    def make() -> InfluxDB:
        server = InfluxDB(tmp_path / f"influxd-{len(started)}").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def database(influxdb: InfluxDB) -> str:
    """A fresh database name on the session influxd (the gateway creates it)."""
    return f"t{os.getpid()}_{next(_names)}"


@pytest.fixture
def crate_prefix() -> str:
    """A prefix for crate ids that no other test uses, so tests sharing a broker never mix."""
    return f"T{os.getpid()}-{next(_names)}"
