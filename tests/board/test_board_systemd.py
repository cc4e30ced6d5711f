"""The board's systemd unit passes systemd's own checks and is as hardened as the gateway's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from board_helpers import REPO

UNIT = REPO / "systemd" / "coldchain-board.service"


def _settings(unit: Path) -> set[str]:
    return {line.strip() for line in unit.read_text().splitlines() if "=" in line and not line.startswith("#")}


def test_board_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit once ExecStart points at this venv's coldchain."""
    coldchain = Path(sys.executable).parent / "coldchain"
    assert coldchain.exists()
    text = UNIT.read_text().replace("/opt/coldchain/.venv/bin/coldchain", str(coldchain))
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze not found: apt-get install systemd"
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert problems == []


def test_board_unit_keeps_every_hardening_setting_of_the_gateway_unit() -> None:
    """Every sandboxing line of the gateway's unit is also in the board's."""
    gateway = REPO / "systemd" / "coldchain-gateway.service"
    hardening = {
        line
        for line in _settings(gateway)
        if line.split("=", 1)[0].startswith(("Protect", "Private", "Restrict", "NoNew", "Lock", "Memory", "System"))
        or line.split("=", 1)[0] in ("CapabilityBoundingSet", "AmbientCapabilities", "UMask")
    }
    assert len(hardening) >= 20
    assert hardening - _settings(UNIT) == set()
