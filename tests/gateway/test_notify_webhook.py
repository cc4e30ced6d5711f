"""Webhook notifications against a real local HTTP receiver: signed, retried, delivered once."""

from __future__ import annotations

import hmac
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from notify_helpers import Receiver, alarm_events, self_signed, wait_for

from cli.services import free_port
from gateway.notify import DeliveryError, Dispatcher, Outbox, WebhookChannel, WebhookConfig, notification_body
from gateway.notify.channel import backoff_s
from gateway.notify.webhook import sign

SECRET = b"s3cret-shared-with-the-receiver"
Serve = Callable[..., ThreadingHTTPServer]
Run = Callable[[Dispatcher], Dispatcher]


def _dispatcher(tmp_path: Path, port: int, name: str = "ops") -> Dispatcher:
    channel = WebhookChannel(WebhookConfig(name, f"http://127.0.0.1:{port}/hook", SECRET, timeout_s=2.0))
    return Dispatcher(channel, Outbox(tmp_path / f"{name}.sqlite"), retry_min_s=0.02, retry_max_s=0.1)


def test_backoff_doubles_up_to_the_cap() -> None:
    """Retries wait min, 2·min, 4·min... never more than the cap."""
    assert [backoff_s(n, 1.0, 5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_failing_receiver_gets_it_exactly_once_signed(tmp_path: Path, serve_hooks: Serve, run_dispatcher: Run) -> None:
    """A receiver failing the first 3 POSTs accepts the notification once; every try is signed and keyed alike."""
    receiver = Receiver(fail_first=3)
    server = serve_hooks(receiver)
    dispatcher = run_dispatcher(_dispatcher(tmp_path, server.server_address[1]))
    event = alarm_events()[0]
    assert dispatcher.notify(event.idempotency_key, notification_body(event))
    assert wait_for(lambda: dispatcher.outbox.counts()["delivered"] == 1)
    assert [status for _, _, status in receiver.requests] == [503, 503, 503, 200]
    ((headers, body, _),) = receiver.accepted()
    assert hmac.compare_digest(headers["X-Coldchain-Signature"], sign(SECRET, body))
    assert {h["Idempotency-Key"] for h, _, _ in receiver.requests} == {"C-1/critical_high/probe1/60000/active"}
    sent = json.loads(body)
    assert (sent["change"], sent["pages"], sent["alarm"]["id"]) == ("active", True, "C-1/critical_high/probe1/60000")


def test_replayed_notification_is_not_sent_again(tmp_path: Path, serve_hooks: Serve, run_dispatcher: Run) -> None:
    """Queuing the same alarm id + change twice (a replay after a restart) delivers it once."""
    receiver = Receiver()
    server = serve_hooks(receiver)
    dispatcher = run_dispatcher(_dispatcher(tmp_path, server.server_address[1]))
    event = alarm_events()[0]
    assert dispatcher.notify(event.idempotency_key, notification_body(event))
    assert wait_for(lambda: dispatcher.outbox.counts()["delivered"] == 1)
    assert not dispatcher.notify(event.idempotency_key, notification_body(event))
    assert not wait_for(lambda: len(receiver.requests) > 1, timeout=0.3)
    assert len(receiver.accepted()) == 1


def test_restart_delivers_the_outbox_once_in_order(tmp_path: Path, serve_hooks: Serve, run_dispatcher: Run) -> None:
    """Notifications queued while the receiver was down survive a restart and arrive once each, in order."""
    port = free_port()
    first = run_dispatcher(_dispatcher(tmp_path, port))
    events = alarm_events()
    for event in events:
        first.notify(event.idempotency_key, notification_body(event))
    assert wait_for(lambda: first.failures >= 2)  # nothing listens yet: refused, retried
    first.stop()
    first.outbox.close()

    receiver = Receiver()
    serve_hooks(receiver, port)
    second = run_dispatcher(_dispatcher(tmp_path, port))
    assert wait_for(lambda: second.outbox.counts() == {"pending": 0, "delivered": 2, "failed": 0})
    keys = [headers["Idempotency-Key"] for headers, _, _ in receiver.accepted()]
    assert keys == ["C-1/critical_high/probe1/60000/active", "C-1/critical_high/probe1/60000/cleared"]


def test_permanent_refusal_is_kept_as_failed_not_retried(
    tmp_path: Path, serve_hooks: Serve, run_dispatcher: Run
) -> None:
    """A 400 answer is not retried; the notification stays in the outbox marked failed, and the next one goes on."""
    receiver = Receiver(fail_first=1, fail_status=400)
    server = serve_hooks(receiver)
    dispatcher = run_dispatcher(_dispatcher(tmp_path, server.server_address[1]))
    for event in alarm_events():
        dispatcher.notify(event.idempotency_key, notification_body(event))
    assert wait_for(lambda: dispatcher.outbox.counts() == {"pending": 0, "delivered": 1, "failed": 1})
    assert [status for _, _, status in receiver.requests] == [400, 200]


def test_outbox_survives_sigkill_of_the_gateway(tmp_path: Path, serve_hooks: Serve, run_dispatcher: Run) -> None:
    """Notifications queued by a process SIGKILLed before it could deliver any are delivered once by the next."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from gateway.notify import Outbox\n"
        "outbox = Outbox(Path(sys.argv[1]))\n"
        "for i in range(3):\n"
        "    outbox.add(f'C-1/r/p/{i}/active', {'n': i}, 1)\n"
        "print('queued', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "ops.sqlite")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "queued"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    receiver = Receiver()
    server = serve_hooks(receiver)
    dispatcher = run_dispatcher(_dispatcher(tmp_path, server.server_address[1]))
    assert wait_for(lambda: dispatcher.outbox.counts() == {"pending": 0, "delivered": 3, "failed": 0})
    assert [json.loads(body)["n"] for _, body, _ in receiver.accepted()] == [0, 1, 2]


def test_a_channel_bug_is_retried_not_fatal(tmp_path: Path, run_dispatcher: Run) -> None:
    """An unexpected exception in a channel is logged and retried; the dispatcher thread keeps delivering."""

    class Flaky:
        name = "flaky"

        def __init__(self) -> None:
            self.calls = 0

        def send(self, key: str, body: dict[str, object]) -> None:
            self.calls += 1
            if self.calls == 1:
                raise KeyError("bug")

    channel = Flaky()
    dispatcher = run_dispatcher(Dispatcher(channel, Outbox(tmp_path / "f.sqlite"), retry_min_s=0.02, retry_max_s=0.05))
    dispatcher.notify("k", {})
    assert wait_for(lambda: dispatcher.outbox.counts()["delivered"] == 1)
    assert (channel.calls, dispatcher.failures) == (2, 1)


def test_https_receiver_with_its_own_ca(tmp_path: Path, serve_hooks: Serve) -> None:
    """An https:// receiver whose certificate is signed by ca_file gets the notification; verification stays on."""
    cert, _, context = self_signed(tmp_path)
    receiver = Receiver()
    server = serve_hooks(receiver, tls=context)
    url = f"https://127.0.0.1:{server.server_address[1]}/hook"
    trusted = WebhookChannel(WebhookConfig("ops", url, SECRET, timeout_s=2.0, ca_file=cert))
    untrusted = WebhookChannel(WebhookConfig("ops", url, SECRET, timeout_s=2.0))
    trusted.send("k/active", {"n": 1})
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.send("k/active", {"n": 1})
    assert len(receiver.accepted()) == 1
