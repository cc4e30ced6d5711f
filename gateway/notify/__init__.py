"""Notification channels (webhook, e-mail), each draining a durable outbox of its own."""

from gateway.notify.audit import audit_point
from gateway.notify.channel import Channel, DeliveryError, Dispatcher
from gateway.notify.config import ChannelConfig, Notifier, parse_notify
from gateway.notify.email import EmailChannel, EmailConfig
from gateway.notify.message import describe, notification_body
from gateway.notify.outbox import Outbox
from gateway.notify.webhook import WebhookChannel, WebhookConfig

__all__ = [
    "Channel",
    "ChannelConfig",
    "DeliveryError",
    "Dispatcher",
    "EmailChannel",
    "EmailConfig",
    "Notifier",
    "Outbox",
    "WebhookChannel",
    "WebhookConfig",
    "audit_point",
    "describe",
    "notification_body",
    "parse_notify",
]
