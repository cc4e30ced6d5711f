"""Helpers for the board's tests: a real board process on a free port, a broker client, HTTP without a browser."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from board.auth import hash_password
from cli.services import free_port

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
# One hash for every test board: scrypt is deliberately slow.
PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class RunningBoard:
    """A ``coldchain board`` process and how to reach it."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def write_config(
    directory: Path, broker_port: int, influx_url: str, database: str, crates: str = "", extra: str = ""
) -> Path:
    """A board config with user ``ops`` (password ``PASSWORD``) next to a copy of the shipped profiles."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "profiles.toml").write_text((REPO / "config" / "profiles.toml").read_text())
    path = directory / "board.toml"
    path.write_text(
        f"""[board]
stale_after_s = 30
[http]
port = {free_port()}
[[auth.users]]
name = "ops"
password_hash = "{PASSWORD_HASH}"
[mqtt]
port = {broker_port}
keepalive_s = 5
ack_timeout_s = 2.0
answer_timeout_s = 2.0
[influxdb]
url = "{influx_url}"
database = "{database}"
timeout_s = 3.0
{crates}
{extra}
"""
    )
    return path


def start_board(
    config: Path, timeout: float = 15.0, env: dict[str, str] | None = None, code: str = ""
) -> RunningBoard:
    """Start the board on ``config`` and wait for its 'listening' line.

    ``env`` adds to the environment; ``code`` (Python) runs the board instead of ``-m cli.main board``.
    """
    log = config.with_suffix(".log")
    out = log.open("w")
    program = ["-c", code] if code else ["-m", "cli.main", "board"]
    process = subprocess.Popen(
        [sys.executable, *program, "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "board listening on" in line:
            return RunningBoard(line.split(" on ", 1)[1].strip().rstrip("/"), process, log)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"board did not start: {log.read_text()[-2000:]}")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(NoRedirect)


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, never following redirects."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def sign_in(board: RunningBoard, password: str = PASSWORD) -> tuple[int, str]:
    """Post the login form; (status, session cookie or '')."""
    form = urllib.parse.urlencode({"user": "ops", "password": password, "next": "/"}).encode()
    status, headers, _ = http(f"{board.url}/login", "POST", form, {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = headers.get("Set-Cookie", "").split(";", 1)[0]
    return status, cookie


def api(board: RunningBoard, cookie: str, path: str, payload: Any = None, csrf: str = "") -> tuple[int, Any]:
    """Call a JSON endpoint as a signed-in user."""
    headers = {"Cookie": cookie, "Content-Type": "application/json", "X-CSRF": csrf}
    body = None if payload is None else json.dumps(payload).encode()
    status, _, raw = http(f"{board.url}{path}", "POST" if payload is not None else "GET", body, headers)
    return status, json.loads(raw) if raw else None


def alarm_payload(crate: str, rule: str = "critical_high", sensor: str = "probe1", **fields: Any) -> bytes:
    """A retained alarm as the alarm engine publishes it."""
    body = {
        "v": 1,
        "crate": crate,
        "rule": rule,
        "sensor": sensor,
        "severity": "critical",
        "state": "active",
        "value_c": -148.2,
        "threshold_c": -150.0,
        "ts": int(time.time() * 1000),
        "seq": 17,
        "started_ts": int(time.time() * 1000) - 60_000,
        "profile": "cryo",
        "id": f"{crate}/{rule}/{sensor}/1",
    }
    body.update(fields)
    return json.dumps(body).encode()


@contextmanager
def mqtt_client(port: int, subscribe: str | None = None) -> Iterator[tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]]:
    """A connected paho client (and the messages of ``subscribe``, once the subscription is confirmed)."""
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    ready = queue.Queue[bool]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, message: received.put(message)
    client.on_subscribe = lambda *_args: ready.put(True)
    client.on_connect = lambda c, *_args: c.subscribe(subscribe, qos=1) if subscribe else ready.put(True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        ready.get(timeout=5)
        yield client, received
    finally:
        client.disconnect()
        client.loop_stop()


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = True) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK."""
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=5)


def write_points(influx_url: str, database: str, lines: list[str]) -> None:
    """Create ``database`` and write line protocol (ms precision) to it, as the gateway does."""
    http(f"{influx_url}/query", "POST", urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}).encode())
    status, _, body = http(f"{influx_url}/write?db={database}&precision=ms", "POST", "\n".join(lines).encode())
    assert status == 204, body
