"""Webhook channel: a signed JSON POST per notification.

The receiver verifies ``X-Coldchain-Signature`` (hex HMAC-SHA256 of the exact
body bytes with the shared secret) and de-duplicates on ``Idempotency-Key``
(alarm id + change): a retry after a lost response carries the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.notify.channel import DeliveryError

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "WebhookConfig", "sign"]

SIGNATURE_HEADER: Final = "X-Coldchain-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
# the request itself is wrong: sending it again cannot help
_PERMANENT: Final = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One webhook receiver."""

    name: str
    url: str
    secret: bytes
    timeout_s: float = 5.0
    ca_file: Path | None = None  # trust this CA for an https:// receiver instead of the system's


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POSTs each notification as JSON to one URL."""

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self.name = config.name
        self._tls = ssl.create_default_context(cafile=config.ca_file) if config.url.startswith("https://") else None

    def send(self, key: str, body: dict[str, Any]) -> None:
        """POST ``body``; DeliveryError unless the receiver answered 2xx."""
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's configured receiver)
            self.config.url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "coldchain-gateway",
                SIGNATURE_HEADER: sign(self.config.secret, data),
                IDEMPOTENCY_HEADER: key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s, context=self._tls) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            raise DeliveryError(
                f"{self.config.url} answered HTTP {exc.code} {exc.reason}",
                retryable=exc.code not in _PERMANENT,
                retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(f"cannot reach {self.config.url}: {reason}") from None
