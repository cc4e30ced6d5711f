"""``coldchain`` stopped from outside (Ctrl-C, a reader that goes away): one line or none, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from cli_helpers import temperature_line, write_lines
from gateway_helpers import ROOT

from cli.services import InfluxDB

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A loopback TCP server that accepts connections and never answers: an InfluxDB that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            accepted.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()
    for connection in held:
        connection.close()


def test_ctrl_c_while_waiting_on_a_server_ends_with_one_line(silent_server: tuple[int, threading.Event]) -> None:
    """SIGINT while 'report' waits for InfluxDB: 'interrupted' on stderr, status 130, no traceback."""
    port, accepted = silent_server
    command = [sys.executable, "-m", "cli.main", "report", "C-1", "--format", "json"]
    process = subprocess.Popen(
        [*command, "--influx-url", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert accepted.wait(20), "the command never reached the server"
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert err.splitlines() == ["coldchain report: interrupted"]
    assert out == ""


@pytest.mark.integration
def test_reader_going_away_ends_quietly(influxdb: InfluxDB, database: str, crate_prefix: str) -> None:
    """'query --csv' whose reader is gone (the end of '| head'): status 141, nothing on stderr."""
    crate = f"{crate_prefix}-P"
    now = int(time.time() * 1000)
    # about 100 KB of CSV: more than a pipe holds, so the command meets the closed pipe while writing
    write_lines(influxdb, database, [temperature_line(crate, "probe1", now - i * 1000, -180.0, i) for i in range(1500)])
    where = ["--influx-url", influxdb.url, "--database", database]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "query", crate, "--csv", "--since", "1h", *where],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the command writes its first row
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGPIPE
    assert err == ""
