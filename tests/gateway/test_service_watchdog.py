"""The gateway and the board under systemd's watchdog: READY, pings while their loops go round, none once one is stuck.

systemd is played by a unix datagram socket the test binds (``NOTIFY_SOCKET``). A stuck loop is
a fault injected into the real program (``-c`` code that replaces one call with one that never
returns, before running the program's own ``main``): the rest of the program keeps running, so
only the liveness check can notice.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from board_helpers import start_board
from board_helpers import write_config as board_config
from gateway_helpers import Connect, GatewayProcess, gateway_config, telemetry

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 1_000_000  # WatchdogSec=1: a ping every 0.5 s, and a loop 1 s late is stuck
PING = b"WATCHDOG=1"

STUCK = """
import sys, threading
from {module} import {owner}
def stuck(*args, **kwargs):  # never returns, as a call hung on a dead peer or a deadlock would
    threading.Event().wait()
{owner}.{method} = stuck
from {program}.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


class Systemd:
    """The notify socket systemd would give a service: records what the service says on it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.env = {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}

    def next(self, timeout: float) -> bytes | None:
        """The next message within ``timeout`` seconds, else None."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(64)
        except TimeoutError:
            return None

    def pings_for(self, seconds: float) -> tuple[int, float]:
        """(pings received, longest silence between them) over the next ``seconds``."""
        end = time.monotonic() + seconds
        last, longest, pings = time.monotonic(), 0.0, 0
        while (left := end - time.monotonic()) > 0:
            message = self.next(left)
            now = time.monotonic()
            if message == PING:
                pings += 1
                longest, last = max(longest, now - last), now
        return pings, max(longest, time.monotonic() - last)

    def silence(self, seconds: float, within: float) -> bool:
        """True once no ping came for ``seconds`` in a row, looking for at most ``within`` seconds."""
        end = time.monotonic() + within
        last = time.monotonic()
        while time.monotonic() < end:
            if self.next(0.1) == PING:
                last = time.monotonic()
            elif time.monotonic() - last >= seconds:
                return True
        return False

    def close(self) -> None:
        """Unbind."""
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[Systemd]:
    """A notify socket in the test's directory."""
    notify = Systemd(tmp_path)
    yield notify
    notify.close()


def _healthy(systemd: Systemd) -> None:
    pings, longest = systemd.pings_for(2.0)
    assert pings >= 3, f"{pings} pings in 2 s"
    assert longest < 1.0, f"a {longest:.1f} s gap between pings"


def test_gateway_is_ready_once_subscribed_and_pings_while_a_failed_write_is_retried(
    tmp_path: Path,
    systemd: Systemd,
    mosquitto: Mosquitto,
    make_influxdb: Callable[[], InfluxDB],
    database: str,
    crate_prefix: str,
    connect: Connect,
) -> None:
    """READY=1 after the subscription; pings go on while the writer retries against a stopped InfluxDB."""
    influx = make_influxdb()
    config = gateway_config(tmp_path, mosquitto, influx, database)
    gateway = GatewayProcess(config, tmp_path / "gateway.log", wait=False, env=systemd.env)
    client = connect(mosquitto)
    first = systemd.next(15)
    while first == PING:  # the clock may ping before the broker confirms the subscriptions
        first = systemd.next(15)
    assert first == b"READY=1"
    gateway.wait_for("subscribed")
    _healthy(systemd)
    influx.stop()
    crate = f"{crate_prefix}-W"
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 0))
    deadline = time.monotonic() + 10
    while "retrying in" not in gateway.stderr() and time.monotonic() < deadline:
        systemd.next(0.1)
    assert "retrying in" in gateway.stderr()
    _healthy(systemd)
    assert gateway.stop() == 0
    while (message := systemd.next(5)) == PING:
        pass
    assert message == b"STOPPING=1"
    client.close()
    gateway.stop(kill=True)


@pytest.mark.parametrize(
    ("method", "loop"),
    [("_write", "the InfluxDB writer thread"), ("deliver", "the MQTT network thread")],
    ids=["writer", "network"],
)
def test_gateway_pings_stop_when_one_of_its_threads_is_stuck(
    tmp_path: Path,
    systemd: Systemd,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    method: str,
    loop: str,
    connect: Connect,
) -> None:
    """A writer stuck in a write, or a network thread stuck handing over a read: the pings stop, the log says which."""
    code = STUCK.format(module="gateway.worker", owner="Worker", method=method, program="gateway")
    config = gateway_config(tmp_path, mosquitto, influxdb, database)
    gateway = GatewayProcess(config, tmp_path / "gateway.log", env=systemd.env, code=code)
    client = connect(mosquitto)
    _healthy(systemd)
    crate = f"{crate_prefix}-S"
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 0))
    assert systemd.silence(2.0, within=10), "the pings went on"
    assert f"{loop} stopped going round" in gateway.stderr()
    assert gateway.process.poll() is None  # alive but stuck: only the watchdog gets it restarted
    client.close()
    gateway.stop(kill=True)


def test_board_is_ready_and_its_pings_stop_when_its_broker_thread_is_stuck(
    tmp_path: Path,
    systemd: Systemd,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    crate_prefix: str,
    connect: Connect,
) -> None:
    """The board says READY=1 once it serves, pings while healthy, and stops when paho's thread hangs in a callback."""
    code = STUCK.format(module="board.broker", owner="BrokerLink", method="_on_message", program="board")
    config = board_config(tmp_path, mosquitto.port, influxdb.url, database)
    board = start_board(config, env=systemd.env, code=code)
    client = connect(mosquitto)
    try:
        assert systemd.next(5) == b"READY=1"
        _healthy(systemd)
        crate = f"{crate_prefix}-B"
        client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 0))
        assert systemd.silence(2.0, within=10), "the pings went on"
        assert "the broker subscription thread stopped going round" in board.log.read_text()
        assert board.process.poll() is None
    finally:
        client.close()
        board.process.kill()
        board.process.wait(10)
