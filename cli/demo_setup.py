"""What ``coldchain demo`` runs: its crates and shipments, the programs' configs, the data it keeps.

The configs are written into the demo's temp directory; the InfluxDB data, the
logs and ``influx.toml`` (the ``--config`` the printed ``query``/``report``
commands use) go into the kept data directory, marked by ``coldchain-demo.json``
so that ``--clean`` and a new run only ever remove a directory the demo made.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CRATES",
    "PROFILES",
    "SCENARIOS",
    "DataDir",
    "DemoCrate",
    "DemoError",
    "default_data_dir",
    "sim_argv",
    "write_agent_config",
    "write_board_config",
    "write_gateway_config",
]

CONFIG = Path(__file__).resolve().parent.parent / "config"
PROFILES = CONFIG / "profiles.toml"
SCENARIOS = CONFIG / "scenarios"
MARKER = "coldchain-demo.json"


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoCrate:
    """A simulated crate: its shipment, and how its shipper behaves (a scenario file or a steady trace)."""

    crate: str
    shipment: str
    product: str
    origin: str
    destination: str
    scenario: str | None = None  # stem of a file in config/scenarios/
    start_c: float = -186.0


CRATES = (
    DemoCrate("C-0001", "SHP-2026-0410", "iPSC retinal pigment epithelium", "Kobe", "Boston"),
    # cut off its broker by the demo while its lid is open: the excursion arrives late
    DemoCrate(
        "C-0002", "SHP-2026-0411", "iPSC dopaminergic progenitors", "Kyoto", "Lund", scenario="demo-cryo-inspection"
    ),
    # out of nitrogen: warning, critical, acknowledged, re-iced, cleared
    DemoCrate("C-0003", "SHP-2026-0412", "iPSC cardiomyocytes", "Kyoto", "Leiden", scenario="demo-cryo-reiced"),
)
STORY_CRATE = "C-0003"
OFFLINE_CRATE = "C-0002"


def default_data_dir() -> Path:
    """Where the demo keeps its data: ``$XDG_DATA_HOME/coldchain-demo`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "coldchain-demo"


class DataDir:
    """The kept data directory: InfluxDB's files, the logs, ``influx.toml`` and the marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.influxd = path / "influxd"
        self.logs = path / "logs"
        self.influx_toml = path / "influx.toml"
        self.marker = path / MARKER

    @contextmanager
    def locked(self, *, removing: bool = False) -> Iterator[None]:
        """Hold the directory for this process: a second demo, --serve-data or --clean on it is refused.

        The lock is a hidden file beside the directory; ``removing`` (``--clean``) removes it too.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.parent / f".{self.path.name}.lock"
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DemoError(
                    f"{self.path} is in use by another 'coldchain demo' (or its --serve-data): stop that one first"
                ) from None
            yield
            if removing:
                lock.unlink(missing_ok=True)

    def exists(self) -> bool:
        """True when a demo's data is here."""
        return self.marker.is_file()

    def _refuse_foreign(self) -> None:
        if self.path.exists() and not self.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise DemoError(
                f"{self.path} exists and holds no demo data ({MARKER} is missing): choose another --data-dir"
            )

    def remove(self) -> bool:
        """Remove the demo's data; False when there was none. Never removes a directory the demo did not make."""
        self._refuse_foreign()
        if not self.path.exists():
            return False
        shutil.rmtree(self.path)
        return True

    def fresh(self) -> bool:
        """Start an empty data directory (a previous demo's is replaced); True when one was replaced."""
        replaced = self.remove()
        self.logs.mkdir(parents=True)
        self.write({"version": 1, "complete": False})
        return replaced

    def read(self) -> dict[str, Any]:
        """The marker's record of the run; DemoError when there is no usable one."""
        try:
            record = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            raise DemoError(f"no demo data in {self.path}: run 'coldchain demo' first") from None
        if not isinstance(record, dict) or not isinstance(record.get("influx_port"), int):
            raise DemoError(f"{self.marker} is not a demo's record: run 'coldchain demo --clean' and the demo again")
        return record

    def write(self, record: dict[str, Any]) -> None:
        """Save the run's record (the marker)."""
        self.marker.write_text(json.dumps(record, indent=2) + "\n")

    def write_influx_toml(self, url: str) -> None:
        """The ``--config`` file for ``coldchain query``/``report``: where the data is served."""
        self.influx_toml.write_text(
            "# Written by 'coldchain demo': where 'coldchain demo --serve-data' serves the demo's data.\n"
            f'[influxdb]\napi = "v1"\nurl = "{url}"\ndatabase = "coldchain"\n\n'
            f"[profiles]\nfile = {json.dumps(str(PROFILES))}\n"
        )


def sim_argv(crate: DemoCrate, link: Path, speed: float) -> list[str]:
    """The simulator's command line: one sample per real second, its clock started by the agent opening it."""
    argv = [sys.executable, "-m", "firmware_sim", "--period", f"{speed:g}", "--speed", f"{speed:g}"]
    argv += ["--link", str(link), "--wait-for-reader", "--duration", "0"]
    if crate.scenario:
        return [*argv, "--scenario", str(SCENARIOS / f"{crate.scenario}.toml")]
    return [*argv, "--sensor", "probe1", "--start", str(crate.start_c)]


def _shipments() -> str:
    return "".join(
        f'[shipments."{c.shipment}"]\norigin = "{c.origin}"\ndestination = "{c.destination}"\n'
        f'product = "{c.product}"\ncrates = ["{c.crate}"]\n\n'
        for c in CRATES
    )


def write_gateway_config(
    workdir: Path,
    host: str,
    port: int,
    influx_url: str,
    late_after_s: float,
    *,
    name: str = "gateway",
    cluster: str = "",
) -> Path:
    """A gateway's config: the private broker and InfluxDB, the shipments, a short lateness limit.

    ``name`` names its file, client id and state file (the cluster demo runs two); ``cluster`` is appended.
    """
    config = workdir / f"{name}.toml"
    config.write_text(
        f"""[mqtt]
host = "{host}"
port = {port}
client_id = "coldchain-{name}"

[influxdb]
api = "v1"
url = "{influx_url}"
database = "coldchain"

[profiles]
file = {json.dumps(str(PROFILES))}
default = "cryo"

[state]
file = "{name}-state.sqlite"

# the demo's offline spell lasts a minute or two, not hours: data older than this on arrival is a backlog
[alarms]
late_after_s = {late_after_s:g}

{cluster}
{_shipments()}"""
    )
    return config


def write_agent_config(
    workdir: Path, crate: str, device: Path, host: str, port: int, *, brokers: Sequence[str] = ()
) -> Path:
    """An agent's config: its pty, the broker (or the crate's relay), quick reconnects after a cut.

    With ``brokers`` (the cluster's MQTT listeners) it connects to any of them over MQTT 3.1.1, and sends
    again what no storage ack confirmed after 10 s (docs/cluster.md: a node's PUBACK is no stream write).
    """
    config = workdir / f"agent-{crate}.toml"
    listed = ", ".join(f'"{broker}"' for broker in brokers)
    where = f'brokers = [{listed}]\nprotocol = "3.1.1"' if brokers else f'host = "{host}"\nport = {port}'
    resend = "ack_timeout_s = 10.0\n" if brokers else ""
    config.write_text(
        f"""[crate]
id = "{crate}"
profile = "cryo"

[profiles]
file = {json.dumps(str(PROFILES))}

[mqtt]
{where}
reconnect_max_s = 2.0

[spool]
path = "spool-{crate}.sqlite"
{resend}
[[probes]]
driver = "serial"
port = "{device}"
sensors = ["probe1"]
"""
    )
    return config


def write_board_config(
    workdir: Path, http_port: int, broker: tuple[str, int], influx_url: str, *, user: str, password_hash: str
) -> Path:
    """The board's config: one staff login, the private broker and InfluxDB, the crates' shipments."""
    crates = "".join(
        f'[[crates]]\nid = "{c.crate}"\nprofile = "cryo"\nshipment = "{c.shipment}"\n'
        f'origin = "{c.origin}"\ndestination = "{c.destination}"\nproduct = "{c.product}"\n\n'
        for c in CRATES
    )
    config = workdir / "board.toml"
    config.write_text(
        f"""[board]
title = "coldchain demo"
profiles_file = {json.dumps(str(PROFILES))}
default_profile = "cryo"
stale_after_s = 30

[http]
host = "127.0.0.1"
port = {http_port}

[auth]
mode = "users"

[[auth.users]]
name = "{user}"
password_hash = "{password_hash}"

[mqtt]
host = "{broker[0]}"
port = {broker[1]}

[influxdb]
url = "{influx_url}"
database = "coldchain"
chart_hours = 1

{crates}"""
    )
    return config
