"""E-mail channel: one plain-text message per notification, through an SMTP relay (smtplib).

STARTTLS is optional because many sites relay through a local MTA on port 25;
across any network, turn it on. SMTP has no idempotency: the Message-ID is
derived from the notification's key, so a rare resend after a crash between the
relay's "250 OK" and the outbox's delivered-mark threads as the same message.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

from gateway.notify.channel import DeliveryError
from gateway.notify.message import describe

__all__ = ["EmailChannel", "EmailConfig"]


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """One SMTP relay and the people to write to."""

    name: str
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 25
    starttls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


class EmailChannel:
    """Sends each notification as an e-mail."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.name = config.name

    def message(self, key: str, body: dict[str, Any]) -> EmailMessage:
        """The e-mail for one notification."""
        subject, text = describe(body)
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.recipients)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@coldchain>"
        message["X-Coldchain-Idempotency-Key"] = key
        message.set_content(text)
        return message

    def send(self, key: str, body: dict[str, Any]) -> None:
        """Hand the e-mail to the relay; DeliveryError unless it accepted it for every recipient."""
        c = self.config
        try:
            with smtplib.SMTP(c.host, c.port, timeout=c.timeout_s) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=c.ca_file))
                if c.username is not None:
                    smtp.login(c.username, c.password or "")
                refused = smtp.send_message(self.message(key, body))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise DeliveryError(
                f"{c.host}:{c.port} refused every recipient: {exc.recipients}", retryable=any(x < 500 for x in codes)
            ) from None
        except smtplib.SMTPResponseException as exc:
            detail = f"{c.host}:{c.port} answered {exc.smtp_code} {exc.smtp_error!r}"
            # 5xx is a permanent refusal, except for authentication, which an operator can fix
            permanent = exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError)
            raise DeliveryError(detail, retryable=not permanent) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot deliver through {c.host}:{c.port}: {exc}") from None
        if refused:
            # accepted for some: a resend would duplicate theirs, so record the rest as failed
            raise DeliveryError(f"{c.host}:{c.port} refused {sorted(refused)}", retryable=False)
