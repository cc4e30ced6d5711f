"""Helpers for the people's-command tests: real points written to the real influxd, a recording v2 stand-in."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cli.services import InfluxDB

MINUTE_MS = 60_000


def write_lines(influxdb: InfluxDB, database: str, lines: list[str]) -> None:
    """Create ``database`` and write line-protocol ``lines`` (ms precision) through ``/write``, as the gateway does."""
    create = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}).encode()
    url = f"{influxdb.url}/write?db={database}&precision=ms"
    for attempt in range(5):
        urllib.request.urlopen(urllib.request.Request(f"{influxdb.url}/query", data=create), timeout=30).close()
        request = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 204
                return
        except urllib.error.HTTPError as exc:
            # influxd 1.6 under load has answered "database not found" right after CREATE DATABASE
            if exc.code != 404 or attempt == 4:
                raise
            time.sleep(0.2)


def temperature_line(crate: str, sensor: str, ts_ms: int, value_c: float, seq: int, profile: str = "cryo") -> str:
    """One ``temperature`` point as the contract defines it."""
    return f"temperature,crate={crate},profile={profile},sensor={sensor} value_c={value_c},seq={seq}i {ts_ms}"


def alarm_line(
    crate: str, rule: str, sensor: str, severity: str, state: str, ts_ms: int, value_c: float, threshold_c: float,
    seq: int, alarm_id: str, by: str | None = None, note: str | None = None,
) -> str:  # fmt: skip
    """One ``alarm`` transition point shaped as gateway.points writes it (state and id are fields);
    acknowledgements carry ``by`` and ``note``."""
    started = alarm_id.rsplit("/", 1)[1]
    fields = f'state="{state}",seq={seq}i,started_ts={started}i,value_c={value_c},threshold_c={threshold_c}'
    fields += f',id="{alarm_id}"'
    if by is not None:
        fields += f',by="{by}",note="{note or ""}"'
    tags = f"crate={crate},profile=cryo,rule={rule},sensor={sensor},severity={severity}"
    return f"alarm,{tags} {fields} {ts_ms}"


def gap_line(crate: str, ts_ms: int, first: int, last: int, state: str = "open") -> str:
    """One ``gap`` point shaped as gateway.points writes it: seqs first..last did not arrive."""
    missing = 0 if state == "closed" else last - first + 1
    return f'gap,crate={crate} first_missing={first}i,last_missing={last}i,missing={missing}i,state="{state}" {ts_ms}'


@dataclass
class RecordingV2:
    """The one stand-in allowed: a local HTTP endpoint that records what influxdb-client sends to a v2 server
    (Debian has no v2 server) and answers ``/api/v2/query`` with the annotated CSV it was given."""

    url: str
    answers: list[str]
    requests: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def recording_v2_standin(answers: list[str]) -> Iterator[RecordingV2]:
    """Serve ``answers`` (annotated CSV), one per query in order, recording each request."""
    state = RecordingV2("", list(answers))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            state.requests.append(
                {"path": self.path, "body": body, "authorization": self.headers.get("Authorization", "")}
            )
            answer = state.answers.pop(0).encode() if state.answers else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def fault_line(crate: str, sensor: str, ts_ms: int, fault: str, seq: int, profile: str = "cryo") -> str:
    """A reading the probe could not take, as gateway.points writes it: field ``fault``, no ``value_c``."""
    return f'temperature,crate={crate},profile={profile},sensor={sensor} fault="{fault}",seq={seq}i {ts_ms}'
