"""The v2 API path (InfluxDB 2.x/3.x/Cloud) through influxdb-client.

No v2 server can be installed here (Debian ships InfluxDB 1.6.7, which has no
/api/v2), so these tests run the gateway against ``V2Recorder``: a small local
HTTP endpoint that records what influxdb-client sends. It is the one stand-in
the project allows, and it is named as such.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gateway_helpers import (
    TS,
    Connect,
    GatewayProcess,
    gateway_config,
    run_gateway,
    wait_until,
)

from cli.services import Mosquitto

pytestmark = pytest.mark.integration

TOKEN = "test-token-123"


class V2Recorder:
    """STAND-IN for a v2-API server: answers the bucket lookup and records every /api/v2/write."""

    def __init__(self, bucket: str = "telemetry") -> None:
        self.bucket = bucket
        self.writes: list[dict[str, object]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict[str, object] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Token {TOKEN}":
                    self._answer(401, {"code": "unauthorized", "message": "unauthorized access"})
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                name = query.get("name", [""])[0]
                buckets = [{"id": "b1", "name": name, "orgID": "o1", "retentionRules": []}]
                self._answer(200, {"buckets": buckets if name == recorder.bucket else []})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                split = urllib.parse.urlsplit(self.path)
                recorder.writes.append(
                    {
                        "path": split.path,
                        "query": dict(urllib.parse.parse_qsl(split.query)),
                        "authorization": self.headers.get("Authorization"),
                        "lines": body.decode().splitlines(),
                    }
                )
                self._answer(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self) -> list[str]:
        """Every line written so far."""
        return [line for write in self.writes for line in write["lines"]]  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[V2Recorder]:
    """The v2 stand-in on a free port."""
    server = V2Recorder()
    yield server
    server.close()


def _config(tmp_path: Path, broker: Mosquitto, recorder: V2Recorder, token: str = TOKEN) -> Path:
    (tmp_path / "token").write_text(token + "\n")
    v2 = f'api = "v2"\norg = "acme"\nbucket = "{recorder.bucket}"\ntoken_file = "token"\nstartup_wait = "1s"'
    return gateway_config(tmp_path, broker, recorder.url, "unused", influx_extra=v2)


def test_v2_write_carries_org_bucket_token_and_ms_points(
    tmp_path, mosquitto, recorder, crate_prefix, connect: Connect
) -> None:
    """influxdb-client posts our line protocol to /api/v2/write with org, bucket, ms precision and the token."""
    crate = f"{crate_prefix}-V"
    gateway = GatewayProcess(_config(tmp_path, mosquitto, recorder), tmp_path / "gateway.log")
    client = connect(mosquitto)
    client.send(crate, [1, 2], value=-162.5)
    expected = [
        f"temperature,crate={crate},profile=cryo,sensor=probe1 value_c=-162.5,seq=1i {TS + 1000}",
        f"temperature,crate={crate},profile=cryo,sensor=probe1 value_c=-162.5,seq=2i {TS + 2000}",
    ]
    wait_until(lambda: [line for line in recorder.lines() if crate in line] == expected, 10, "2 points")
    write = recorder.writes[0]
    assert write["path"] == "/api/v2/write"
    assert write["query"] == {"org": "acme", "bucket": "telemetry", "precision": "ms"}
    assert write["authorization"] == f"Token {TOKEN}"
    assert gateway.stop() == 0
    client.close()


def test_v2_wrong_token_exits_1_naming_the_key(tmp_path, mosquitto, recorder) -> None:
    """A token the server refuses stops the start-up with one line naming the URL and token_file."""
    result = run_gateway(_config(tmp_path, mosquitto, recorder, token="nope"))
    assert result.returncode == 1
    assert f"InfluxDB at {recorder.url} refused the token" in result.stderr
    assert "check [influxdb] token_file" in result.stderr
