"""The demo's script: what people and networks do to the crates while the simulators run.

The shippers' physics (the cryo crate running dry and being re-iced, the other's lid
opening) is in the simulators' scenario files; this script does the rest, on the
same (scaled) clock, anchored at each crate's first reading:

- C-0002 loses its network from 15 s to 120 s (its relay is cut), so the excursion its
  lid opening causes reaches the gateway late, from the agent's spool;
- a scripted staff member acknowledges C-0003's alarms some seconds after it goes
  critical, published the way ``coldchain ack`` publishes (``cli.ack.acknowledge``);
- the re-icing at 80 s (a scenario event) is narrated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cli.ack import AckError, acknowledge
from cli.demo_link import Relay
from cli.demo_setup import OFFLINE_CRATE, STORY_CRATE
from cli.demo_view import DemoView
from cli.mqtt_read import BrokerSettings

__all__ = ["ACK_BY", "ACK_NOTE", "LATE_AFTER_S", "ScriptedAck", "Story"]

ACK_BY = "alice"
ACK_NOTE = "re-icing it at the Frankfurt hub"
CUT_AT_S, RESTORE_AT_S = 15.0, 120.0  # C-0002's offline spell, simulated seconds after its first reading
# The gateway's [alarms] late_after_s (simulated): data older on arrival is a backlog. Far above the
# live delay; below the age of C-0002's excursion when it arrives, and its end (~88 s) must arrive
# older than this too, so the excursion is judged over before anyone could have known: late.
LATE_AFTER_S = 20.0
REICED_AT_S = 80.0  # the refill event of config/scenarios/demo-cryo-reiced.toml
ACK_AFTER_S = 8.0  # how long alice takes to react to the critical alarm
_ACKED_RULES = ("critical_high", "warning_high")


class ScriptedAck:
    """alice: some seconds after C-0003 goes critical she acknowledges ``rules``, as ``coldchain ack`` does."""

    def __init__(
        self,
        view: DemoView,
        broker: BrokerSettings,
        rules: tuple[str, ...],
        speed: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._broker = broker
        self._rules = rules
        self._speed = speed
        self._clock = clock
        self._critical_seen: float | None = None
        self._sent = False

    def step(self) -> bool:
        """True once, when the acknowledgements are sent (in a thread: the view shows the gateway's record)."""
        critical = self._view.alarm(STORY_CRATE, "critical_high", "probe1")
        if self._critical_seen is None and critical is not None and critical.state == "active":
            self._critical_seen = self._clock()
        if self._sent or self._critical_seen is None:
            return False
        if self._clock() < self._critical_seen + ACK_AFTER_S / self._speed:
            return False
        self._sent = True
        threading.Thread(target=self._send, name="demo-ack", daemon=True).start()
        return True

    def _send(self) -> None:
        for rule in self._rules:
            try:
                _, answer = acknowledge(
                    self._broker, STORY_CRATE, rule, "probe1", by=ACK_BY, note=ACK_NOTE, timeout_s=15.0
                )
            except AckError as exc:
                self._view.note(f"{ACK_BY}'s acknowledgement of {rule} was not delivered: {exc}")
                continue
            if answer is None:
                self._view.note(f"the gateway did not answer {ACK_BY}'s acknowledgement of {rule}")
            elif not answer.recorded:
                self._view.note(f"the gateway refused {ACK_BY}'s acknowledgement of {rule}: {answer.reason}")


class Story:
    """Advance with ``step()`` from the demo's loop; each step happens once."""

    def __init__(
        self,
        view: DemoView,
        relay: Relay,
        broker: BrokerSettings,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._relay = relay
        self._broker = broker
        self._speed = speed
        self._clock = clock
        self._done: set[str] = set()
        self._alice = ScriptedAck(view, broker, _ACKED_RULES, speed, clock)

    def _due(self, crate: str, at_s: float) -> bool:
        first = self._view.first_reading_at(crate)
        return first is not None and self._clock() >= first + at_s / self._speed

    def _first(self, name: str, due: bool) -> bool:
        """True the first time ``name`` is due."""
        if name in self._done or not due:
            return False
        self._done.add(name)
        return True

    def step(self) -> None:
        """Do whatever is due now."""
        if self._first("cut", self._due(OFFLINE_CRATE, CUT_AT_S)):
            self._relay.cut()
            self._view.note(
                f"{OFFLINE_CRATE} loses its network (a flight): its agent keeps every reading in its spool,"
                " and its own buzzer sounds if it warms"
            )
        if self._first("restore", self._due(OFFLINE_CRATE, RESTORE_AT_S)):
            self._relay.restore()
            self._view.note(
                f"{OFFLINE_CRATE} has its network back: its spool drains, and the excursion it had while offline"
                " arrives late (the board lists it under needs review)"
            )
        if self._first("reiced", self._due(STORY_CRATE, REICED_AT_S)):
            self._view.note(f"{STORY_CRATE} is re-iced: its dry shipper's nitrogen is topped up")
        if self._first("ack", self._alice.step()):
            self._view.note(f"{ACK_BY} (staff, scripted) takes on {STORY_CRATE}'s alarms: {ACK_NOTE!r}")
        if self._first("told", self._told()):
            self._view.note("the story is told: look around the board; Ctrl-C stops the demo and prints what to try")

    def _told(self) -> bool:
        """Every alarm of C-0003 has cleared, and C-0002's late excursion has arrived."""
        if not {"restore", "ack"} <= self._done:
            return False
        alarms = [self._view.alarm(STORY_CRATE, rule, "probe1") for rule in _ACKED_RULES]
        late = self._view.alarm(OFFLINE_CRATE, "warning_high", "probe1")
        arrived = late is not None and late.state == "cleared" and late.optional("late") is True
        return arrived and all(a is not None and a.state == "cleared" for a in alarms)
