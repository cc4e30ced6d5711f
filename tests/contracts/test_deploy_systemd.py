"""The systemd units parse and pass systemd-analyze's checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# the NATS node runs Debian's nats-server, not coldchain: tests/cluster/test_cluster_config.py checks its unit
SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = sorted(u for u in SYSTEMD.glob("*.service") if "nats" not in u.name)
INSTALLED_COMMAND = "/opt/coldchain/.venv/bin/coldchain"


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing wrong (with ExecStart pointed at this venv's coldchain)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd"
    command = Path(sys.executable).parent / "coldchain"
    assert INSTALLED_COMMAND in unit.read_text()
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_COMMAND, str(command)))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, check=False)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ours, result.stdout + result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_is_hardened(unit: Path) -> None:
    """Every unit runs unprivileged with the agreed hardening and restarts on failure."""
    text = unit.read_text()
    for setting in (
        "User=coldchain",
        "Restart=always",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "CapabilityBoundingSet=\n",
        "/etc/coldchain/",
    ):
        assert setting in text, f"{unit.name} lacks {setting.strip()}"


@pytest.mark.parametrize("name", ["coldchain-agent.service", "coldchain-gateway.service"])
def test_stateful_units_keep_state_in_their_own_directory(name: str) -> None:
    """The agent's spool and the gateway's state live in a StateDirectory= that survives restarts."""
    text = next(u for u in UNITS if u.name == name).read_text()
    assert "StateDirectory=" in text


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_long_running_service_is_watched(unit: Path) -> None:
    """Every service tells systemd when it is ready and is restarted when its watchdog pings stop."""
    settings = {line.strip() for line in unit.read_text().splitlines() if not line.startswith("#")}
    assert {"Type=notify", "NotifyAccess=main"} <= settings
    assert any(line.startswith("WatchdogSec=") for line in settings)
