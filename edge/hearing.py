"""Whether anybody hears the crate: the gateway's storage acks must follow what it publishes.

Connected to the broker is not heard: with the gateway (or its database) down, the broker
takes every message and nobody stores or judges it. So once published telemetry has waited
``silent_after_ms`` without a storage ack that says something new, the gateway is *silent*:
the agent treats that like being offline (the local alarm may sound) and says so in a
``gateway_silent`` event; the next new ack makes it *heard* again (``gateway_heard``).
The retained ack the broker replays at every subscription repeats the last value and so
never counts as news.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Hearing"]


class Hearing:
    """The gateway's hearing of one crate; driven by the agent loop only (monotonic ms)."""

    def __init__(self, silent_after_ms: int) -> None:
        self.silent_after_ms = silent_after_ms
        self.silent = False
        self._last_ack: int | None = None  # the stored_through last received
        self._waiting_since: int | None = None  # since when published telemetry waits for news from the gateway

    def acked(self, stored_through: int) -> bool:
        """A storage ack arrived; True when it ends a silence (the gateway is heard again)."""
        if stored_through == self._last_ack:
            return False
        self._last_ack = stored_through
        self._waiting_since = None
        if self.silent:
            self.silent = False
            return True
        return False

    def check(self, now_ms: int, connected: bool, awaiting: Callable[[], bool]) -> int | None:
        """Note whether published telemetry awaits an ack (``awaiting``, asked only when that matters);
        how long it waited (ms) when that just became silence.

        While offline nothing is measured (the agent is unheard anyway, and republishes on
        reconnecting); a silence lasts until an ack says something new.
        """
        if not connected:
            self._waiting_since = None
            return None
        if self._waiting_since is None and awaiting():
            self._waiting_since = now_ms
        if self.silent or self._waiting_since is None:
            return None
        waited = now_ms - self._waiting_since
        if waited <= self.silent_after_ms:
            return None
        self.silent = True
        return waited

    @property
    def last_ack(self) -> int | None:
        """The stored_through last received (None before the first)."""
        return self._last_ack
