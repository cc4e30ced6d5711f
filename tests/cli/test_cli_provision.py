"""``coldchain provision``: never replaces a login or key without --rotate, never writes a placeholder broker."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from gateway_helpers import PROFILES

from cli.provision import main as provision
from gateway.config import load_config


def _common(root: Path) -> list[str]:
    return ["--broker-dir", str(root / "etc"), "--keys-dir", str(root / "keys"), "--out", str(root / "out")]


def _crate(root: Path, *extra: str) -> int:
    return provision(["crate", "C-1", "--broker-host", "broker.coldchain.test", *_common(root), *extra])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _login_matches(passwd: Path, username: str, password: str) -> bool:
    """The mosquitto $7$ entry of ``username`` verifies ``password``."""
    entry = next(line for line in passwd.read_text().splitlines() if line.startswith(f"{username}:"))
    _, _, iterations, salt, digest = entry.split(":", 1)[1].split("$")
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return base64.b64encode(computed).decode() == digest


def test_provisioning_a_crate_again_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second 'provision crate' without --rotate exits 2 naming --rotate; login, key and files stay as they were."""
    assert _crate(tmp_path) == 0
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert _crate(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--rotate" in err
    assert str(tmp_path / "etc" / "passwd") in err
    assert _snapshot(tmp_path) == before


def test_rotate_replaces_the_crates_password_and_key(tmp_path: Path) -> None:
    """With --rotate the crate gets a new password (the broker's entry verifies it) and a new signing key."""
    assert _crate(tmp_path) == 0
    old_key = (tmp_path / "keys" / "C-1.key").read_text()
    assert _crate(tmp_path, "--rotate") == 0
    password = (tmp_path / "out" / "C-1" / "mqtt-password").read_text().strip()
    assert _login_matches(tmp_path / "etc" / "passwd", "C-1", password)
    new_key = (tmp_path / "keys" / "C-1.key").read_text()
    assert new_key != old_key
    assert (tmp_path / "out" / "C-1" / "signing.key").read_text() == new_key


@pytest.mark.parametrize("kind", [["staff", "alice"], ["gateway"]])
def test_provisioning_a_staff_or_gateway_login_again_is_refused(tmp_path: Path, kind: list[str]) -> None:
    """Staff and gateway logins are not replaced without --rotate either."""
    assert provision([*kind, *_common(tmp_path)]) == 0
    before = _snapshot(tmp_path)
    assert provision([*kind, *_common(tmp_path)]) == 2
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("host", ["mqtt.example.org", "broker.example.com", "example.net", "mqtt.invalid", "a b"])
def test_placeholder_or_malformed_broker_host_is_refused_before_writing(tmp_path: Path, host: str) -> None:
    """A documentation placeholder (or no host name at all) never ends up in a crate's agent.toml."""
    assert provision(["crate", "C-1", "--broker-host", host, *_common(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


def test_without_out_it_says_where_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --out: the first line names the absolute directory, and the credentials are there."""
    monkeypatch.chdir(tmp_path)
    assert provision(["staff", "alice", "--broker-dir", str(tmp_path / "etc")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"no --out given: writing under {tmp_path / 'provisioned'}"
    assert (tmp_path / "provisioned" / "staff.alice.password").is_file()


def test_shipment_prints_the_gateway_lines_that_assign_the_crate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--shipment prints TOML that, added to the gateway's config, puts the crate on the shipment."""
    assert _crate(tmp_path, "--shipment", "SHP-7") == 0
    out = capsys.readouterr().out
    snippet = out[out.index('[crates."C-1"]') :].split("\nreload")[0]
    config = tmp_path / "gw.toml"
    config.write_text(f"[profiles]\nfile = {json.dumps(str(PROFILES))}\n{snippet}\n")
    assert load_config(config).shipments == {"C-1": "SHP-7"}
    assert "SHP-7" not in (tmp_path / "out" / "C-1" / "agent.toml").read_text()


@pytest.mark.parametrize("extra", [["--shipment", "SHP-7"], ["--broker-host", "broker.coldchain.test"]])
def test_crate_only_options_are_refused_for_staff(tmp_path: Path, extra: list[str]) -> None:
    """An option that would be ignored for a staff login is refused instead."""
    with pytest.raises(SystemExit) as exit_:
        provision(["staff", "alice", *_common(tmp_path), *extra])
    assert exit_.value.code == 2
    assert not any(tmp_path.iterdir())
