"""Real local receivers for the notification tests: an HTTP server that fails first, an SMTP server."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from coldchain.alarms.lifecycle import AlarmBook, AlarmChange
from coldchain.alarms.transition import AlarmTransition


@dataclass
class Receiver:
    """What a webhook receiver saw: every request, and the status it answered."""

    fail_first: int = 0
    fail_status: int = 503
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[tuple[dict[str, str], bytes, int]]:
        """The requests answered 200."""
        with self.lock:
            return [r for r in self.requests if r[2] == 200]


def self_signed(directory: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (openssl), its key, and a server context using them."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, key, context


def start_receiver(receiver: Receiver, port: int = 0, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """An http.server on 127.0.0.1 that answers ``fail_status`` to the first ``fail_first`` POSTs, then 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                status = receiver.fail_status if len(receiver.requests) < receiver.fail_first else 200
                receiver.requests.append((dict(self.headers), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def webhook_channel(directory: Path, server: ThreadingHTTPServer, extra: str = "") -> str:
    """A gateway ``[[notify.webhook]]`` table "ops" posting to ``server`` (secret and outbox in ``directory``)."""
    (directory / "hook.secret").write_text("s3cret\n")
    return (
        f'[[notify.webhook]]\nname = "ops"\nurl = "http://127.0.0.1:{server.server_port}/hook"\n'
        f'secret_file = "{directory / "hook.secret"}"\nretry_min_s = 0.1\nretry_max_s = 0.2\n'
        f'outbox = "{directory / "outbox.sqlite"}"\n{extra}'
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def alarm_events(crate: str = "C-1") -> list[AlarmChange]:
    """A real lifecycle: a critical excursion raised, then cleared."""
    book = AlarmBook()
    raised = AlarmTransition("critical_high", "high", "critical", "probe1", "active", 60_000, 60_000, 7, -149.5, -150.0)
    cleared = AlarmTransition("critical_high", "high", "critical", "probe1", "cleared", 90_000, 60_000, 9, -153.0)
    return book.apply(crate, raised, 60_000, "cryo") + book.apply(crate, cleared, 90_000, "cryo")
