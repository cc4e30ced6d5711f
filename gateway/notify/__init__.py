"""Notification channels (webhook, e-mail), each draining a durable outbox of its own."""

from gateway.notify.channel import Channel, DeliveryError, Dispatcher
from gateway.notify.email import EmailChannel, EmailConfig
from gateway.notify.message import describe, notification_body
from gateway.notify.outbox import Outbox
from gateway.notify.webhook import WebhookChannel, WebhookConfig

__all__ = [
    "Channel",
    "DeliveryError",
    "Dispatcher",
    "EmailChannel",
    "EmailConfig",
    "Outbox",
    "WebhookChannel",
    "WebhookConfig",
    "describe",
    "notification_body",
]
