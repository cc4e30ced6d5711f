"""What a notification channel is, and the dispatcher that drains its outbox in order.

A channel only knows how to send one notification (``send``) and says whether a
failure is worth retrying (``DeliveryError.retryable``). The dispatcher owns the
rest: the order, the capped exponential back-off, and marking delivery only
after the receiver confirmed it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.notify.outbox import Outbox

__all__ = ["Channel", "DeliveryError", "Dispatcher", "backoff_s"]

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A notification was not delivered; ``retryable`` False means the receiver refused it for good."""

    def __init__(self, detail: str, retryable: bool = True, retry_after_s: float | None = None) -> None:
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        super().__init__(detail)


class Channel(Protocol):
    """A way to tell people: webhook, e-mail..."""

    name: str

    def send(self, key: str, body: dict[str, Any]) -> None:
        """Deliver one notification or raise DeliveryError; ``key`` is its idempotency key."""


def backoff_s(attempts: int, minimum: float, maximum: float) -> float:
    """Wait before retry number ``attempts`` (1 = first retry): doubling from ``minimum``, capped at ``maximum``."""
    return float(min(maximum, minimum * 2 ** max(0, attempts - 1)))


class Dispatcher:
    """Drains one channel's outbox on a thread of its own, oldest first, until stopped."""

    def __init__(
        self,
        channel: Channel,
        outbox: Outbox,
        retry_min_s: float = 1.0,
        retry_max_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.time,
        keep_delivered_days: float = 30.0,
    ) -> None:
        self.channel = channel
        self.outbox = outbox
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        # a replay after a restart comes within minutes; a month of delivered keys is plenty to recognise it
        self.keep_delivered_ms = round(keep_delivered_days * 86_400_000)
        self._pruned_at = 0
        self.failures = 0  # delivery attempts that failed, retried or not
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify-{channel.name}", daemon=True)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def notify(self, key: str, body: dict[str, Any]) -> bool:
        """Queue a notification durably; False when ``key`` was queued before (a replay)."""
        added = self.outbox.add(key, body, self._now_ms())
        self._wake.set()
        return added

    def start(self) -> Dispatcher:
        """Start delivering in the background."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the delivery in progress, if any (undelivered notifications stay in the outbox)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self._now_ms()
            if now - self._pruned_at > 3_600_000:
                self.outbox.prune(now - self.keep_delivered_ms)
                self._pruned_at = now
            wait = self.deliver_next()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def _send(self, key: str, body: dict[str, Any]) -> None:
        try:
            self.channel.send(key, body)
        except DeliveryError:
            raise
        except Exception as exc:
            # a bug in a channel must not kill delivery of everything behind it: log it, retry later
            log.exception("%s: unexpected error sending %s", self.channel.name, key)
            raise DeliveryError(f"unexpected error: {exc!r}") from exc

    def deliver_next(self) -> float:
        """Try the oldest pending notification if it is due; return how long to wait before calling again."""
        item = self.outbox.head()
        if item is None:
            return 1.0
        now = self._now_ms()
        if item.next_ms > now:
            return (item.next_ms - now) / 1000
        try:
            self._send(item.key, item.body)
        except DeliveryError as exc:
            self.failures += 1
            if not exc.retryable:
                log.error("%s refused %s for good, given up: %s", self.channel.name, item.key, exc.detail)
                self.outbox.give_up(item.key, exc.detail, self._now_ms())
                return 0.0
            delay = backoff_s(item.attempts + 1, self.retry_min_s, self.retry_max_s)
            if exc.retry_after_s is not None:
                delay = min(self.retry_max_s, max(delay, exc.retry_after_s))
            log.warning(
                "%s: delivery of %s failed (attempt %d), retry in %.1f s: %s",
                self.channel.name, item.key, item.attempts + 1, delay, exc.detail,
            )  # fmt: skip
            self.outbox.retry_later(item.key, exc.detail, self._now_ms() + round(delay * 1000))
            return 0.0
        self.outbox.delivered(item.key, self._now_ms())
        return 0.0
