"""Operations: TLS and passwords, a publish the broker refuses, the systemd watchdog, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_helpers import (
    AgentProcess,
    InProcessAgent,
    Listen,
    Listener,
    PtyBoard,
    RunAgent,
    SpawnAgent,
    agent_config,
    wait_until,
    write_config,
)

from cli.services import Mosquitto, free_port

pytestmark = pytest.mark.integration

TS = 1_795_000_000_000
PASSWORD = "s3cret-crate-password"


def _openssl(directory: Path, *argv: str) -> None:
    subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True)


def _certificates(directory: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "1", "-subj", "/CN=edge test CA")  # fmt: skip
    _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "crate.key", "-out", "crate.csr",
             "-subj", "/CN=crate")  # fmt: skip
    _openssl(directory, "x509", "-req", "-in", "crate.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "crate.crt", "-days", "1")  # fmt: skip


class SecureBroker:
    """A broker with a plain listener for the test's anonymous reader and a TLS one for the crate."""

    def __init__(self, directory: Path, crate: str, telemetry_allowed: bool, require_certificate: bool = False) -> None:
        self.dir = directory
        self.crate = crate
        directory.mkdir(parents=True, exist_ok=True)
        _certificates(directory / "tls")
        passwd = directory / "passwd"
        passwd.write_text(f"{crate}:{PASSWORD}\n")
        subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
        self.acl = directory / "acl"
        self.write_acl(telemetry_allowed)
        self.tls_port = free_port()
        port = free_port()
        run_as = "user root" if os.geteuid() == 0 else ""
        tls = directory / "tls"
        self.broker = Mosquitto(
            directory / "broker",
            port=port,
            config=f"""{run_as}
per_listener_settings false
allow_anonymous true
password_file {passwd}
acl_file {self.acl}
persistence false
log_dest stderr
listener {port} 127.0.0.1
listener {self.tls_port} 127.0.0.1
cafile {tls}/ca.crt
certfile {tls}/server.crt
keyfile {tls}/server.key
require_certificate {"true" if require_certificate else "false"}
""",
        ).start()

    def write_acl(self, telemetry_allowed: bool) -> None:
        """Anonymous may read everything; the crate may write its status and events (and telemetry if allowed)."""
        base = f"coldchain/v1/crates/{self.crate}"
        lines = [
            "topic read coldchain/#",
            f"user {self.crate}",
            f"topic write {base}/status",
            f"topic write {base}/events",
        ]
        lines.append(f"topic read {base}/ack")
        if telemetry_allowed:
            lines.append(f"topic write {base}/telemetry")
        self.acl.write_text("\n".join(lines) + "\n")

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its ACL."""
        assert self.broker.process is not None
        self.broker.process.send_signal(signal.SIGHUP)

    def mqtt_section(self, password_file: Path) -> str:
        """The agent's [mqtt] keys for the TLS listener with this crate's credentials."""
        return (
            f'ca_file = "{self.dir / "tls" / "ca.crt"}"\nusername = "{self.crate}"\npassword_file = "{password_file}"\n'
        )


@pytest.fixture
def secure(tmp_path: Path, crate_prefix: str) -> Iterator[SecureBroker]:
    """A TLS + password broker whose ACL does not yet let the crate publish telemetry."""
    broker = SecureBroker(tmp_path / "secure", f"{crate_prefix}-SEC", telemetry_allowed=False)
    yield broker
    broker.broker.stop()


def _tls_config(tmp_path: Path, secure: SecureBroker, password: str, extra: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    password_file = tmp_path / "mqtt.password"
    password_file.write_text(password + "\n")
    config = agent_config(
        tmp_path / "agent", secure.crate, secure.broker, mqtt_extra=secure.mqtt_section(password_file)
    )
    text = config.read_text().replace(f"port = {secure.broker.port}", f"port = {secure.tls_port}\n{extra}")
    config.write_text(text)
    return config


def test_tls_with_password_from_file_connects_and_refused_publish_is_retried(
    tmp_path: Path, secure: SecureBroker, listen: Listen, run_agent: RunAgent
) -> None:
    """Over TLS with the password file the crate connects; telemetry the ACL refuses (v5 reason) stays
    spooled, uncounted, and is delivered once the broker allows it."""
    listener = listen(secure.broker, [f"coldchain/v1/crates/{secure.crate}/#"])
    run = run_agent(_tls_config(tmp_path, secure, PASSWORD, "refused_retry_s = 0.2"))
    wait_until(lambda: any(s["state"] == "online" for s in listener.on("/status")), 10, "online over TLS")
    run.sample(TS, probe1=-170.0)
    wait_until(lambda: run.agent.forwarder.refused >= 1, 10, "refused publish")
    assert run.agent.forwarder.published == 0
    assert len(run.agent.spool) == 1
    assert listener.telemetry() == []
    secure.write_acl(telemetry_allowed=True)
    secure.reload()
    got = wait_until(listener.telemetry, 10, "delivered after the ACL allows it")
    assert got[0]["seq"] == 0
    wait_until(lambda: run.agent.forwarder.published == 1, 5, "counted once accepted")


def test_wrong_password_is_refused_and_nothing_is_lost(
    tmp_path: Path, secure: SecureBroker, caplog: pytest.LogCaptureFixture, run_agent: RunAgent
) -> None:
    """With a wrong password the broker refuses the connection; readings stay in the spool."""
    run = run_agent(_tls_config(tmp_path, secure, "wrong"))
    run.sample(TS, probe1=-170.0)
    wait_until(lambda: "refused the connection: Not authorized" in caplog.text, 10, "refusal logged")
    assert not run.agent.link.connected
    assert len(run.agent.spool) == 1


def test_sd_notify_ready_watchdog_and_stopping(tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str) -> None:
    """Under systemd the agent says READY=1, pings WATCHDOG=1 at half WATCHDOG_USEC, and says STOPPING=1."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    board = PtyBoard()
    agent = AgentProcess(
        write_config(tmp_path, f"{crate_prefix}-N", mosquitto, board.device),
        env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"},
    )
    try:
        assert sock.recv(64) == b"READY=1"
        start = time.monotonic()
        pings = [sock.recv(64) for _ in range(4)]
        assert pings == [b"WATCHDOG=1"] * 4
        assert time.monotonic() - start < 2.0  # every ~100 ms, with room for a loaded machine
        assert agent.terminate() == 0
        messages = []
        while (message := sock.recv(64)) != b"STOPPING=1":
            messages.append(message)
        assert set(messages) <= {b"WATCHDOG=1"}
    finally:
        agent.stop()
        board.close()
        sock.close()


def test_sigterm_flushes_and_exits_within_5_s(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, spawn_agent: SpawnAgent
) -> None:
    """SIGTERM mid-stream: the agent exits 0 within 5 s, the last tick is spooled, and it says offline."""
    crate = f"{crate_prefix}-X"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/status"])
    config = write_config(tmp_path, crate, mosquitto, board.device)
    agent = spawn_agent(config)
    agent.wait_log("opened")
    board.tick({"probe1": -170.0})  # half a tick: only the SIGTERM flush completes it
    time.sleep(0.05)
    start = time.monotonic()
    assert agent.terminate(timeout=5) == 0
    assert time.monotonic() - start < 5
    assert "stopped; 1 message(s) left in the spool" in agent.text()
    wait_until(lambda: listener.on("/status") and listener.on("/status")[-1]["state"] == "offline", 5, "offline")


def test_sigterm_while_broker_unreachable_exits_promptly(
    tmp_path: Path, crate_prefix: str, board: PtyBoard, spawn_agent: SpawnAgent
) -> None:
    """Even while reconnecting to a broker that is not there, SIGTERM ends the agent within 5 s."""
    broker = Mosquitto(tmp_path / "never-started")
    config = write_config(tmp_path, f"{crate_prefix}-Y", broker, board.device)
    config.write_text(config.read_text().replace("reconnect_max_s = 0.3", "reconnect_max_s = 30"))
    agent = spawn_agent(config)
    agent.wait_log("cannot reach broker")
    time.sleep(1.0)  # let the back-off grow
    start = time.monotonic()
    assert agent.terminate(timeout=5) == 0
    assert time.monotonic() - start < 5


def test_client_certificate_is_presented_when_the_broker_requires_one(
    tmp_path: Path, crate_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With cert_file and key_file the crate passes a broker that requires client certificates; without, it cannot."""
    secure = SecureBroker(tmp_path / "secure", f"{crate_prefix}-CRT", telemetry_allowed=True, require_certificate=True)
    listener = Listener(secure.broker, [f"coldchain/v1/crates/{secure.crate}/#"])
    tls = secure.dir / "tls"
    with_cert = _tls_config(
        tmp_path / "with", secure, PASSWORD, f'cert_file = "{tls}/crate.crt"\nkey_file = "{tls}/crate.key"'
    )
    without = InProcessAgent(_tls_config(tmp_path / "without", secure, PASSWORD))
    run = InProcessAgent(with_cert)
    try:
        run.sample(TS, probe1=-170.0)
        got = wait_until(listener.telemetry, 10, "telemetry over mutual TLS")
        assert got[0]["seq"] == 0
        wait_until(lambda: "lost broker" in caplog.text, 10, "the agent without a certificate turned away")
        assert not without.agent.link.connected
    finally:
        run.stop()
        without.stop()
        listener.close()
        secure.broker.stop()
