"""E-mail notifications against a real local SMTP server (aiosmtpd): arrive once, also after an outage."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notify_helpers import alarm_events, self_signed, wait_for

from cli.services import free_port
from coldchain.alarms.lifecycle import AlarmBook
from coldchain.alarms.transition import AlarmTransition
from gateway.notify import Dispatcher, EmailChannel, EmailConfig, Outbox, notification_body


class Inbox:
    """An aiosmtpd handler that keeps every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    """A real SMTP server on a free loopback port."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def _dispatcher(tmp_path: Path, port: int) -> Dispatcher:
    config = EmailConfig(
        "duty", "127.0.0.1", "coldchain@example.org", ("duty@example.org", "qa@example.org"), port=port
    )
    return Dispatcher(EmailChannel(config), Outbox(tmp_path / "duty.sqlite"), retry_min_s=0.02, retry_max_s=0.1)


def test_alarm_email_arrives_once(tmp_path: Path, smtp: tuple[Controller, Inbox]) -> None:
    """An active alarm becomes one e-mail to every recipient, naming crate, rule, sensor and how to acknowledge."""
    controller, inbox = smtp
    dispatcher = _dispatcher(tmp_path, controller.port).start()
    try:
        event = alarm_events()[0]
        dispatcher.notify(event.idempotency_key, notification_body(event))
        assert wait_for(lambda: dispatcher.outbox.counts()["delivered"] == 1)
        assert not dispatcher.notify(event.idempotency_key, notification_body(event))
    finally:
        dispatcher.stop()
    assert inbox.envelopes == [("coldchain@example.org", ["duty@example.org", "qa@example.org"])]
    (message,) = inbox.messages
    assert message["Subject"] == "[coldchain] CRITICAL active: crate C-1, critical_high on probe1"
    assert message["X-Coldchain-Idempotency-Key"] == "C-1/critical_high/probe1/60000/active"
    text = message.get_content()
    assert "Value: -149.5 °C    Limit: -150.0 °C" in text
    assert "coldchain ack C-1 critical_high probe1 --by NAME --note TEXT" in text


def test_email_waits_out_a_relay_outage(tmp_path: Path) -> None:
    """Queued while the relay is down, each e-mail arrives once after it comes up, in order, after a restart."""
    port = free_port()
    first = _dispatcher(tmp_path, port).start()
    for event in alarm_events():
        first.notify(event.idempotency_key, notification_body(event))
    assert wait_for(lambda: first.failures >= 2)
    first.stop()
    first.outbox.close()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    second = _dispatcher(tmp_path, port).start()
    try:
        assert wait_for(lambda: second.outbox.counts() == {"pending": 0, "delivered": 2, "failed": 0})
    finally:
        second.stop()
        controller.stop()
    assert [m["X-Coldchain-Idempotency-Key"].rsplit("/", 1)[1] for m in inbox.messages] == ["active", "cleared"]


def test_late_alarm_email_says_it_is_history() -> None:
    """A late alarm's e-mail says in its subject that it happened offline and is already over."""
    book = AlarmBook()
    book.apply("C-1", AlarmTransition("lid_open", "lid", "warning", "crate", "active", 1000, 0), 10**7)
    late = book.apply("C-1", AlarmTransition("lid_open", "lid", "warning", "crate", "cleared", 9000, 0), 10**7)[-1]
    message = EmailChannel(EmailConfig("duty", "h", "a@b.c", ("d@e.f",))).message(
        late.idempotency_key, notification_body(late)
    )
    assert "LATE: happened while the crate was offline, already over" in message["Subject"]


def test_starttls_relay_gets_the_mail_encrypted(tmp_path: Path) -> None:
    """With starttls on, the channel upgrades the session, verifies the relay's certificate, and delivers."""
    cert, _, context = self_signed(tmp_path)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True)
    controller.start()
    config = EmailConfig(
        "duty", "127.0.0.1", "coldchain@example.org", ("duty@example.org",), port=controller.port,
        starttls=True, ca_file=cert,
    )  # fmt: skip
    dispatcher = Dispatcher(EmailChannel(config), Outbox(tmp_path / "tls.sqlite"), retry_min_s=0.02, retry_max_s=0.1)
    dispatcher.start()
    try:
        event = alarm_events()[0]
        dispatcher.notify(event.idempotency_key, notification_body(event))
        assert wait_for(lambda: dispatcher.outbox.counts()["delivered"] == 1)
    finally:
        dispatcher.stop()
        controller.stop()
    assert len(inbox.messages) == 1
