"""The alarm engine: every crate's rules and the alarm book behind one small interface.

The gateway's pipeline hands it what arrived (telemetry, crate status, lid,
orientation and shock events, staff acks) with the arrival time, calls ``tick`` about once a second,
and publishes the ``AlarmChange`` values it returns (retained MQTT state, the
``alarm`` measurement, notification channels). Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coldchain.alarms.crate_monitor import CrateMonitor
from coldchain.alarms.lifecycle import AlarmBook, AlarmChange, LifecyclePolicy
from coldchain.position.geometry import Position
from coldchain.position.phases import Area, phase_of
from coldchain.profiles import Profile
from coldchain.wire import StaffAck, Telemetry

__all__ = ["AlarmEngine"]


class AlarmEngine:
    """Alarm rules per crate, by product profile, and the lifecycle of what they raise."""

    def __init__(
        self,
        profiles: Mapping[str, Profile],
        default_profile: str,
        crate_profiles: Mapping[str, str] | None = None,
        policy: LifecyclePolicy | None = None,
        shipments: Mapping[str, str] | None = None,
        *,
        areas: Mapping[str, tuple[Area | None, Area | None]] | None = None,
    ) -> None:
        """``crate_profiles`` (from config) wins over the profile a crate reports, which wins over the default;
        ``shipments`` maps a crate to the shipment id its alarms carry; ``areas`` a crate to its
        shipment's origin and destination areas (which set its phase, coldchain.position.phases)."""
        if default_profile not in profiles:
            raise ValueError(f"default profile {default_profile!r} is not one of {sorted(profiles)}")
        unknown = {p for p in (crate_profiles or {}).values() if p not in profiles}
        if unknown:
            raise ValueError(f"crate profiles {sorted(unknown)} are not among {sorted(profiles)}")
        self.profiles = profiles
        self.default_profile = default_profile
        self.crate_profiles = dict(crate_profiles or {})
        self.shipments = dict(shipments or {})
        self.areas = dict(areas or {})
        self.book = AlarmBook(policy)
        self.monitors: dict[str, CrateMonitor] = {}
        self.unknown_profiles = 0  # telemetry naming a profile we do not have (the default was used)

    def profile_for(self, crate: str, reported: str | None = None) -> Profile:
        """The profile whose rules apply to ``crate``."""
        name = self.crate_profiles.get(crate) or reported or self.default_profile
        if name not in self.profiles:
            self.unknown_profiles += 1
            name = self.default_profile
        return self.profiles[name]

    def monitor(self, crate: str, reported: str | None = None) -> CrateMonitor:
        """The crate's monitor, made on first sight (its profile then stays for the shipment)."""
        monitor = self.monitors.get(crate)
        if monitor is None:
            monitor = self.monitors[crate] = CrateMonitor(crate, self.profile_for(crate, reported))
        return monitor

    def _apply(self, monitor: CrateMonitor, transitions: list[Any], arrival_ms: int) -> list[AlarmChange]:
        events: list[AlarmChange] = []
        for transition in transitions:
            crate = monitor.crate
            events += self.book.apply(crate, transition, arrival_ms, monitor.profile.name, self.shipments.get(crate))
        return events

    def telemetry(self, message: Telemetry, arrival_ms: int) -> list[AlarmChange]:
        """Evaluate one telemetry message (a crate's messages in seq order, backlogs included)."""
        monitor = self.monitor(message.crate, message.profile)
        events = self._apply(monitor, monitor.feed(message, arrival_ms), arrival_ms)
        return events + self.book.caught_up(message.crate, message.ts, arrival_ms)

    def status(self, crate: str, online: bool, arrival_ms: int) -> list[AlarmChange]:
        """The crate's retained status (``offline`` is its last will) arrived at ``arrival_ms``."""
        monitor = self.monitor(crate)
        return self._apply(monitor, monitor.status(online, arrival_ms), arrival_ms)

    def lid(self, crate: str, is_open: bool, ts: int, arrival_ms: int) -> list[AlarmChange]:
        """A lid event of event time ``ts`` arrived at ``arrival_ms``."""
        monitor = self.monitor(crate)
        return self._apply(monitor, monitor.lid(is_open, ts), arrival_ms)

    def orientation(self, crate: str, tilt_deg: float, ts: int, arrival_ms: int) -> list[AlarmChange]:
        """An orientation event (tilt from vertical) of event time ``ts`` arrived at ``arrival_ms``."""
        monitor = self.monitor(crate)
        return self._apply(monitor, monitor.orientation(tilt_deg, ts), arrival_ms)

    def shock(self, crate: str, shock_g: float, tilt_deg: float, ts: int, arrival_ms: int) -> list[AlarmChange]:
        """A shock event of event time ``ts`` arrived at ``arrival_ms``."""
        monitor = self.monitor(crate)
        return self._apply(monitor, monitor.shock(shock_g, tilt_deg, ts), arrival_ms)

    def position(self, crate: str, where: Position, ts: int, arrival_ms: int) -> list[AlarmChange]:
        """A GPS fix of event time ``ts`` arrived at ``arrival_ms``: the crate's shipment phase follows it."""
        origin, destination = self.areas.get(crate, (None, None))
        monitor = self.monitor(crate)
        return self._apply(monitor, monitor.enter_phase(phase_of(where, origin, destination), ts), arrival_ms)

    def switched_on(self, crate: str, ts: int) -> None:
        """The crate powered on at event time ``ts``: its profile's start delay begins."""
        self.monitor(crate).switched_on(ts)

    def powered_on(self, crate: str, reported: str | None, ts: int) -> None:
        """A reading says the crate's board powered on at ``ts``: only the shipment's first starts the delay.

        A later one (a reboot mid-shipment, e.g. a brown-out) does not: its probes are in place, and
        silencing them for the delay could hide an excursion under way. The monitor is made with the
        profile the crate reports, before its start delay begins.
        """
        monitor = self.monitor(crate, reported)
        if monitor.switched_on_ts is None:
            monitor.switched_on(ts)

    def adopt_profile(self, crate: str, reported: str) -> None:
        """The crate reported what it carries after a status or lid event made its monitor with another profile.

        Before its first reading the monitor takes the reported profile, keeping what it knows;
        later a crate's profile stays for the shipment.
        """
        monitor = self.monitors.get(crate)
        if monitor is None or monitor.last_ts is not None:
            return
        profile = self.profile_for(crate, reported)
        if profile is not monitor.profile:
            fresh = CrateMonitor(crate, profile)
            fresh.restore(monitor.snapshot())
            self.monitors[crate] = fresh

    def restart(self, crate: str) -> None:
        """The crate numbers its messages afresh (new device or shipment): fresh rule state, made on its next input."""
        self.monitors.pop(crate, None)

    def watches(self, crate: str) -> bool:
        """True when the crate has rule state (which the caller saves with the crate's own)."""
        return crate in self.monitors

    def monitor_state(self, crate: str) -> dict[str, Any] | None:
        """One crate's rule state with its profile's name, as ``snapshot()`` holds it; None without any."""
        monitor = self.monitors.get(crate)
        if monitor is None:
            return None
        return {"profile": monitor.profile.name, "state": monitor.snapshot()}

    def excuse_silence(self, now_ms: int) -> None:
        """Nothing could arrive until ``now_ms`` (the gateway held its window): stale-data rules count from then."""
        for monitor in self.monitors.values():
            for stale in monitor.stale:
                stale.excuse(now_ms)

    def forget(self, crate: str) -> bool:
        """Forget an idle crate's rule state and cleared alarms; False (nothing forgotten) while an alarm is open."""
        if not self.book.forget(crate):
            return False
        self.monitors.pop(crate, None)
        return True

    def acknowledge(self, ack: StaffAck) -> AlarmChange:
        """Record a staff acknowledgement; ``AckRejectedError`` (with the reason) when the alarm is not active."""
        return self.book.acknowledge(ack)

    def tick(self, now_ms: int) -> list[AlarmChange]:
        """Wall-clock tick: stale data, offline crates, held backlog alarms, escalations."""
        events: list[AlarmChange] = []
        for monitor in self.monitors.values():
            events += self._apply(monitor, monitor.tick(now_ms), now_ms)
        return events + self.book.tick(now_ms)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: the book (small; persist after every event) and every crate's rule state."""
        return {
            "book": self.book.to_dict(),
            "monitors": {c: {"profile": m.profile.name, "state": m.snapshot()} for c, m in self.monitors.items()},
        }

    def adopt(self, crate: str, monitor: Mapping[str, Any] | None, book: Mapping[str, Any], now_ms: int) -> None:
        """Take ``crate`` over from another gateway: its rule state (``monitor_state``) and its part of the book
        (``AlarmBook.crate_dict``), replacing whatever this engine remembered of it."""
        self.drop(crate)
        self.book.adopt(crate, book)
        if monitor is not None:
            self._resume(crate, monitor, now_ms)

    def drop(self, crate: str) -> None:
        """Forget ``crate``'s rule state and alarms, open ones too: another gateway serves it now."""
        self.monitors.pop(crate, None)
        self.book.drop(crate)

    def _resume(self, crate: str, saved: Mapping[str, Any], now_ms: int) -> None:
        monitor = self.monitor(crate, saved["profile"])
        if monitor.profile.name == saved["profile"]:
            monitor.restore(saved["state"])
        for stale in monitor.stale:
            stale.reference = max(now_ms, stale.reference or now_ms)

    def restore(self, state: Mapping[str, Any], now_ms: int) -> None:
        """Resume from ``snapshot()`` at wall time ``now_ms``; crates whose profile is gone start afresh.

        The silence while the gateway itself was down is not the crates' fault:
        stale-data rules count again from ``now_ms``.
        """
        self.book = AlarmBook.from_dict(state["book"], self.book.policy)
        self.monitors.clear()
        for crate, saved in state["monitors"].items():
            self._resume(crate, saved, now_ms)
