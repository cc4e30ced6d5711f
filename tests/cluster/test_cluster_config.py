"""The shipped NATS cluster files: the node's systemd unit, the example authorization, the rights renderer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cli.cluster_auth import AuthError, authorization, subject

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "coldchain-nats.service"


def test_nats_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the NATS node's unit (ExecStart pointed at this machine's nats-server)."""
    analyze = shutil.which("systemd-analyze")
    server = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
    assert analyze, "systemd-analyze is missing: apt-get install systemd"
    assert server, "nats-server is missing: apt-get install nats-server"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/usr/sbin/nats-server", server))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert UNIT.name not in result.stdout + result.stderr


def test_nats_unit_is_hardened() -> None:
    """The node runs unprivileged, sandboxed, restarts on failure and keeps JetStream in its state directory."""
    text = UNIT.read_text()
    for setting in ("User=coldchain-nats", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict",
                    "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "StateDirectory=coldchain-nats",
                    "/etc/coldchain/nats/node.conf"):  # fmt: skip
        assert setting in text, f"{UNIT.name} lacks {setting.strip()}"
    assert "store_dir: \"/var/lib/coldchain-nats\"" in (REPO / "config" / "nats" / "node.conf").read_text()


def test_shipped_auth_example_is_what_cluster_auth_writes() -> None:
    """config/nats/auth.conf is the renderer's output for its example logins (the docs cannot drift)."""
    rendered = authorization("CHANGE-ME-gateway", {"C-0042": "CHANGE-ME-crate"}, {"alice": "CHANGE-ME-staff"})
    shipped = (REPO / "config" / "nats" / "auth.conf").read_text()
    assert "\n".join(line for line in shipped.splitlines() if not line.startswith("#")) + "\n" == rendered


def test_crate_id_with_a_dot_is_refused() -> None:
    """nats-server 2.9 closes an MQTT connection publishing under a topic with '.': such a crate is refused."""
    with pytest.raises(AuthError, match=r"'\.'"):
        authorization("pw", {"C.42": "pw"}, {})


def test_reserved_login_is_no_crate() -> None:
    """A staff or service login never gets a crate's rights."""
    with pytest.raises(AuthError, match="staff or service"):
        authorization("pw", {"staff.alice": "pw"}, {})


def test_topic_filters_map_to_subjects() -> None:
    """'/' becomes '.', '+' '*' and '#' '>', as nats-server maps MQTT topics."""
    assert subject("coldchain/v1/crates/+/telemetry") == "coldchain.v1.crates.*.telemetry"
    assert subject("coldchain/v1/alarms/#") == "coldchain.v1.alarms.>"


def test_every_login_gets_publish_and_subscribe_rights() -> None:
    """Each login has both lists (nats-server 2.9.10 crashes on reload over a retained message of a login without)."""
    users = [line for line in authorization("g", {"C-1": "c"}, {"alice": "a"}).splitlines() if "permissions" in line]
    assert len(users) == 3
    assert all("publish: {allow: [" in line and "subscribe: {allow: [" in line for line in users)
