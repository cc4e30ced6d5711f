"""The shipped, locked-down broker configuration, run for real in a temp directory.

``config/mosquitto/coldchain.conf`` and ``acl`` with paths and ports moved into the
directory, a throwaway CA for the TLS listener, and logins made by ``coldchain provision``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from cli.provision import main as provision
from cli.services import _RUN_AS, Mosquitto, free_port

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "mosquitto"


@dataclass
class LockedBroker:
    """The running broker and where its credentials were written."""

    broker: Mosquitto
    tls_port: int
    creds: Path
    ca: Path


def make_ca(directory: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 (server.crt/.key), made with openssl; returns ca.crt."""

    def run(*argv: str) -> None:
        subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=coldchain test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return directory / "ca.crt"


def start_locked_broker(root: Path, crates: tuple[str, ...] = (), staff: tuple[str, ...] = ()) -> LockedBroker:
    """Provision the gateway, ``crates`` and ``staff``, then start the shipped configuration under ``root``."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    ca = make_ca(etc)
    (etc / "acl").write_text((SHIPPED / "acl").read_text())
    creds = root / "creds"
    common = ["--broker-dir", str(etc), "--keys-dir", str(root / "keys"), "--out", str(creds)]
    for crate in crates:
        assert provision(["crate", crate, "--broker-host", "127.0.0.1", *common]) == 0
    for name in staff:
        assert provision(["staff", name, *common]) == 0
    assert provision(["gateway", *common]) == 0
    port, tls_port = free_port(), free_port()
    config = (
        (SHIPPED / "coldchain.conf").read_text()
        .replace("/etc/mosquitto/coldchain/", f"{etc}/")
        .replace("/var/lib/mosquitto/", f"{root}/")
        .replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
        .replace("listener 8883", f"listener {tls_port} 127.0.0.1")
        .replace("log_dest syslog", "log_dest stderr")
    ) + f"\n{_RUN_AS}\n"  # the temp dir is private to root, so the broker must not drop to its own user # fmt: skip
    return LockedBroker(Mosquitto(root / "run", port=port, config=config).start(), tls_port, creds, ca)
