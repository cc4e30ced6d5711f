"""Shared fixtures: real services (a private mosquitto and a private influxd on free ports), the stop of
any gateway a failing test left running, and the edge tests' probe board on a pty and mock pins."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edge_helpers import AgentProcess, InProcessAgent, Listen, Listener, PtyBoard, RunAgent, SpawnAgent
from gateway_helpers import Client, Connect, GatewayProcess
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from parts import started

from cli.services import InfluxDB, Mosquitto

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def gateway_cleanup() -> Iterator[list[GatewayProcess]]:
    """Stops (SIGKILL) every gateway a test started and did not stop, whatever the test's outcome."""
    yield GatewayProcess.running
    GatewayProcess.stop_leftovers()


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


@pytest.fixture
def board() -> Iterator[PtyBoard]:
    """A probe board on a real pseudo-terminal (the edge agent's tests; the alert board's tests have their own)."""
    pty = PtyBoard()
    yield pty
    pty.close()


@pytest.fixture
def listen() -> Iterator[Listen]:
    """Subscribers on a real broker (``Listener``'s arguments), closed after the test."""
    yield from started(Listener, Listener.close)


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Plain MQTT clients on a real broker (``gateway_helpers.Client``'s arguments), disconnected after the test."""
    yield from started(Client, Client.close)


@pytest.fixture
def run_agent() -> Iterator[RunAgent]:
    """Edge agents in a thread of the test (``InProcessAgent``'s arguments), stopped after it."""
    yield from started(InProcessAgent, InProcessAgent.stop)


@pytest.fixture
def spawn_agent() -> Iterator[SpawnAgent]:
    """``python -m edge`` child processes (``AgentProcess``'s arguments), killed after the test if still running."""
    yield from started(AgentProcess, AgentProcess.stop)


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockFactory]:
    """gpiozero's MockFactory for a crate's pins; also the default, because its software SPI bus ignores pin_factory."""
    mock = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", mock)
    yield mock
    mock.reset()
