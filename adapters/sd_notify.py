"""systemd notification (sd_notify) without libsystemd: READY, WATCHDOG pings and STOPPING.

With ``Type=notify`` and ``WatchdogSec=`` in its unit, systemd sets ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC`` and restarts a service whose pings stop. Each program pings from a loop
that only goes round while it is alive (the agent's main loop; the gateway's clock and the
board's event loop, each vouching for its other threads through ``adapters.liveness``), so a
hung loop, not just a dead process, is caught. Pings go out at half the interval, as
sd_watchdog_enabled(3) recommends.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Watchdog"]

log = logging.getLogger(__name__)


class Watchdog:
    """Talks to systemd when started by it; does nothing otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # an abstract socket is written with a leading '@' in the environment
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.interval_ms: int | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval_ms = max(1, int(usec) // 2000)
        self._next_ms = 0
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def period_s(self) -> float | None:
        """systemd's ``WatchdogSec=`` in seconds, None when no watchdog is armed."""
        return None if self.interval_ms is None else self.interval_ms * 2 / 1000

    def _send(self, message: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify %s to %r failed: %s", message, self.address, exc)

    def ready(self) -> None:
        """Tell systemd start-up is complete."""
        self._send("READY=1")

    def ping(self, mono_ms: int) -> None:
        """Keep the watchdog fed; call from the main loop as often as you like."""
        if self.interval_ms is not None and mono_ms >= self._next_ms:
            self._send("WATCHDOG=1")
            self._next_ms = mono_ms + self.interval_ms

    def stopping(self) -> None:
        """Tell systemd the service is shutting down on purpose."""
        self._send("STOPPING=1")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
