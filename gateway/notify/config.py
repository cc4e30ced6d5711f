"""The ``[[notify.webhook]]`` and ``[[notify.email]]`` tables of the gateway's config, and the fan-out to them.

``gateway/notify/sample.toml`` documents every key. Each channel names the
changes it hears (``active``, ``acknowledged``, ``cleared``, ``escalated``), so
escalation to a second channel is a channel that hears only ``escalated``; late
alarms (over before their data arrived) reach only channels with ``late = true``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from adapters.secrets import optional_secret
from coldchain.alarms.lifecycle import ACKNOWLEDGED, ESCALATED, AlarmChange
from coldchain.settings.table import Table
from gateway.notify.channel import Channel, Dispatcher
from gateway.notify.email import EmailChannel, EmailConfig
from gateway.notify.message import notification_body
from gateway.notify.outbox import Outbox
from gateway.notify.webhook import WebhookChannel, WebhookConfig

__all__ = ["CHANGES", "ChannelConfig", "Notifier", "parse_notify"]

CHANGES: Final = ("active", ACKNOWLEDGED, "cleared", ESCALATED)


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One notification channel: how to send, what it hears, where its outbox lives."""

    name: str
    outbox: Path
    changes: tuple[str, ...]
    late: bool
    retry_min_s: float
    retry_max_s: float
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None

    def hears(self, event: AlarmChange) -> bool:
        """True when this channel should deliver ``event``."""
        return event.change in self.changes and (self.late or not event.alarm.late)


def _common(table: Table, base: Path, kind: str) -> dict[str, object]:
    name = table.identifier("name")
    changes = tuple(table.text_list("changes", list(CHANGES)))
    for change in changes:
        if change not in CHANGES:
            raise table.error("changes", f"{change!r} is not one of {list(CHANGES)}")
    retry_min_s = table.number("retry_min_s", 1.0, minimum=0.01)
    retry_max_s = table.number("retry_max_s", 300.0, minimum=0.01)
    if retry_max_s < retry_min_s:
        raise table.error("retry_max_s", "must not be below retry_min_s")
    return {
        "name": name,
        "outbox": table.file_path("outbox", base, f"outbox-{kind}-{name}.sqlite"),
        "changes": changes,
        "late": table.flag("late", True),
        "retry_min_s": retry_min_s,
        "retry_max_s": retry_max_s,
    }


def _webhook(table: Table, base: Path) -> ChannelConfig:
    common = _common(table, base, "webhook")
    url = table.text("url")
    if not url.startswith(("http://", "https://")):
        raise table.error("url", f"{url!r} must be an http:// or https:// URL")
    secret = optional_secret(table, "secret_file", base)
    if secret is None:
        raise table.error("secret_file", "is required: receivers verify X-Coldchain-Signature with it")
    timeout_s = table.number("timeout_s", 5.0, minimum=0.1, maximum=120.0)
    ca_file = table.file_path("ca_file", base)
    if ca_file is not None and not ca_file.is_file():
        raise table.error("ca_file", f"file {ca_file} does not exist")
    config = WebhookConfig(str(common["name"]), url, secret.encode(), timeout_s, ca_file)
    return ChannelConfig(**common, webhook=config)  # type: ignore[arg-type]


def _email(table: Table, base: Path) -> ChannelConfig:
    common = _common(table, base, "email")
    recipients = tuple(table.text_list("to"))
    if not recipients or not all("@" in r for r in recipients):
        raise table.error("to", f"must list e-mail addresses, got {list(recipients)}")
    sender = table.text("from")
    if "@" not in sender:
        raise table.error("from", f"{sender!r} is not an e-mail address")
    username = table.text("username", None)
    password = optional_secret(table, "password_file", base)
    if password is not None and username is None:
        raise table.error("password_file", "is set but username is missing")
    config = EmailConfig(
        str(common["name"]),
        host=table.text("host"),
        sender=sender,
        recipients=recipients,
        port=table.integer("port", 25, minimum=1, maximum=65535),
        starttls=table.flag("starttls", False),
        ca_file=table.file_path("ca_file", base),
        username=username,
        password=password,
        timeout_s=table.number("timeout_s", 10.0, minimum=0.1, maximum=120.0),
    )
    return ChannelConfig(**common, email=config)  # type: ignore[arg-type]


def parse_notify(notify: Table, base: Path) -> tuple[ChannelConfig, ...]:
    """Every channel of a ``[notify]`` table; relative paths start at ``base`` (the config file's directory)."""
    channels = [_webhook(t, base) for t in notify.tables("webhook")]
    channels += [_email(t, base) for t in notify.tables("email")]
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        raise notify.error("webhook", f"channel names must be unique, got {names}")
    return tuple(channels)


class Notifier:
    """Fans each alarm event out to the channels that hear it, each through its own durable outbox."""

    def __init__(self, configs: Sequence[ChannelConfig]) -> None:
        self.channels: list[tuple[ChannelConfig, Dispatcher]] = []
        for config in configs:
            channel: Channel = WebhookChannel(config.webhook) if config.webhook else EmailChannel(config.email)  # type: ignore[arg-type]
            dispatcher = Dispatcher(channel, Outbox(config.outbox), config.retry_min_s, config.retry_max_s)
            self.channels.append((config, dispatcher))

    def publish(self, event: AlarmChange, shipment: Mapping[str, str] | None = None) -> list[str]:
        """Queue ``event`` for every channel that hears it (durably, before returning); their names.

        ``shipment``: origin, destination, product of the crate's shipment record (``notification_body``).
        """
        body: dict[str, Any] | None = None  # built only when a channel hears it
        names = []
        for config, dispatcher in self.channels:
            if config.hears(event):
                body = body or notification_body(event, shipment)
                dispatcher.notify(event.idempotency_key, body)
                names.append(config.name)
        return names

    def start(self) -> Notifier:
        """Start every channel's delivery thread (what a previous run left in the outboxes goes first)."""
        for _, dispatcher in self.channels:
            dispatcher.start()
        return self

    def stop(self) -> None:
        """Stop delivering and close the outboxes."""
        for _, dispatcher in self.channels:
            dispatcher.stop()
            dispatcher.outbox.close()
