"""Loop liveness: the watchdog is fed only while every watched loop keeps going round.

A service's ping comes from one loop, but its work is done by others too (the gateway's
MQTT network thread and InfluxDB writer, the board's broker thread). Each of those loops
calls ``Heartbeat.beat(within_s)`` on every pass, promising its next pass within that
time: a short promise while it polls, a long one while it waits on purpose (a reconnect
back-off, a write retried after a failure, a write bounded by its timeout). A loop that
breaks its promise by more than the grace (systemd's ``WatchdogSec=``) is wedged: the
pinging loop then withholds ``WATCHDOG=1`` and systemd restarts the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from adapters.sd_notify import Watchdog

__all__ = ["Heartbeat", "Liveness"]

log = logging.getLogger(__name__)

# without a systemd watchdog a wedge is only logged: after this long
_DEFAULT_GRACE_S = 30.0


class Heartbeat:
    """One loop's sign of life: when it promised to pass again (monotonic seconds)."""

    def __init__(self, name: str, within_s: float) -> None:
        """``within_s``: how long the loop may take to start and make its first pass."""
        self.name = name
        self._due = time.monotonic() + within_s

    def beat(self, within_s: float) -> None:
        """The loop is going round; it passes again within ``within_s`` seconds (or is wedged)."""
        self._due = time.monotonic() + within_s  # one float store: safe from any thread

    def overdue_s(self, now: float) -> float:
        """How long past its promise the loop is at ``now`` (negative while it is on time)."""
        return now - self._due


class Liveness:
    """Pings ``watchdog`` while every heartbeat is on time (grace: ``WatchdogSec=``); says which loop is not."""

    def __init__(self, watchdog: Watchdog, heartbeats: Sequence[Heartbeat]) -> None:
        self.watchdog = watchdog
        self.heartbeats = tuple(heartbeats)
        self.grace_s = watchdog.period_s or _DEFAULT_GRACE_S
        self.wedged: tuple[str, ...] = ()

    def check(self) -> None:
        """Call from the pinging loop (one thread) as often as you like: ping if every watched loop is alive."""
        now = time.monotonic()
        wedged = tuple(h.name for h in self.heartbeats if h.overdue_s(now) > self.grace_s)
        if wedged != self.wedged:
            if wedged:
                then = "no more watchdog pings: systemd restarts the service"
                if self.watchdog.period_s is None:
                    then = "no systemd watchdog is armed: nothing restarts it"
                log.error("%s stopped going round (over %.0f s late); %s", " and ".join(wedged), self.grace_s, then)
            else:
                log.warning("%s going round again", " and ".join(self.wedged))
            self.wedged = wedged
        if not wedged:
            self.watchdog.ping(int(now * 1000))
