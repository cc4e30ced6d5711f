"""Private mosquitto and influxd on free loopback ports in a temp directory.

Used by ``coldchain demo`` and by the test fixtures; never touches a broker or
database already running on this machine (e.g. on 1883/8086).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.influx_errors import InfluxError
from adapters.influx_read import V1Reader
from adapters.influx_v1 import V1Http
from coldchain.settings.influx import InfluxSettings

__all__ = ["InfluxDB", "Mosquitto", "ServiceError", "free_port"]


class ServiceError(RuntimeError):
    """A private service could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _find(binary: str, package: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ServiceError(f"{binary} not found: install it with 'apt-get install {package}'")
    return path


class _Process:
    name = ""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / f"{self.name}.log"

    def _spawn(self, argv: list[str], ready: Callable[[], bool], timeout: float = 20.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise ServiceError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} not ready after {timeout:.0f} s (log: {self.log})")

    @property
    def running(self) -> bool:
        """True while the process we started is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        """Stop the process we started (SIGKILL with ``kill``), and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# Started as root, mosquitto drops to user "mosquitto", which cannot enter a private temp dir.
_RUN_AS = "user root" if os.geteuid() == 0 else ""


class Mosquitto(_Process):
    """A private mosquitto: anonymous, persistent, queues generously, TCP_NODELAY on."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "", config: str | None = None) -> None:
        """A broker in ``workdir``; ``config`` replaces the whole test configuration (it must listen on ``port``)."""
        super().__init__(workdir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.config = config
        self.conf = self.dir / "mosquitto.conf"

    def write_conf(self) -> None:
        """Write the broker configuration (kept across restarts of the same broker)."""
        if self.config is not None:
            self.conf.write_text(self.config)
            return
        self.conf.write_text(
            f"""listener {self.port} 127.0.0.1
{_RUN_AS}
allow_anonymous true
persistence true
persistence_location {self.dir}/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages 1000
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
{self.extra_conf}
"""
        )

    def start(self) -> Mosquitto:
        """Start (or restart) the broker on its port; returns self when it accepts connections."""
        if not self.conf.exists():
            self.write_conf()
        self._spawn([_find("mosquitto", "mosquitto"), "-c", str(self.conf)], lambda: _port_open(self.port))
        return self


class InfluxDB(_Process):
    """A private influxd 1.x with its data, WAL and meta in the temp directory."""

    name = "influxd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.dir / "influxdb.conf"

    def start(self) -> InfluxDB:
        """Start (or restart) influxd; returns self when ``/ping`` answers."""
        d = self.dir
        self.conf.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  index-version = "inmem"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""
        )
        self._spawn([_find("influxd", "influxdb"), "run", "-config", str(self.conf)], self._ping, timeout=30)
        return self

    def _ping(self) -> bool:
        http = V1Http(InfluxSettings(url=self.url, timeout_s=1.0), keep_alive=False)
        try:
            status, _ = http.request("GET", "/ping", {})
        except InfluxError:
            return False
        return status == 204

    def query(self, q: str, db: str = "coldchain") -> list[dict[str, Any]]:
        """Run an InfluxQL statement; return the ``series`` of its first result (empty when none)."""
        try:
            result = V1Reader(InfluxSettings(url=self.url, database=db, timeout_s=30.0)).query(q)["results"][0]
        except InfluxError as exc:
            raise ServiceError(f"InfluxQL {q!r}: {exc}") from exc
        if "error" in result:
            raise ServiceError(f"InfluxQL error for {q!r}: {result['error']}")
        return list(result.get("series", []))

    def rows(self, q: str, db: str = "coldchain") -> list[dict[str, object]]:
        """Run a query and flatten its series into dicts (tags included)."""
        out: list[dict[str, object]] = []
        for series in self.query(q, db):
            tags = series.get("tags", {}) or {}
            for values in series["values"]:
                row: dict[str, object] = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                out.append(row)
        return out
