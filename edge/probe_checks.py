"""The probe checks the agent runs locally, with the gateway's own arithmetic: excursions and stuck probes.

Excursions come from ``coldchain.alarms.threshold.ThresholdTracker`` over the crate's
profile (the same code the gateway runs), so the crate and the gateway agree on
when an excursion started and ended even if the crate was offline throughout.
"""

from __future__ import annotations

import logging
from typing import Any

from coldchain.alarms.stuck import StuckDetector
from coldchain.alarms.threshold import ThresholdTracker
from coldchain.alarms.transition import ACTIVE
from coldchain.profiles import Profile
from coldchain.wire import Reading

__all__ = ["ProbeChecks"]

log = logging.getLogger(__name__)


class ProbeChecks:
    """Feeds each reading to the profile's trackers and the stuck detector; returns the events to queue."""

    def __init__(self, profile: Profile | None, stuck_samples: int) -> None:
        self.profile = profile
        self.stuck_samples = stuck_samples
        self._trackers: dict[str, list[ThresholdTracker]] = {}
        self._stuck: dict[str, StuckDetector] = {}
        self._peaks: dict[tuple[str, str], float] = {}
        self._faults: dict[str, str] = {}  # sensor -> the fault it reports now

    @property
    def active(self) -> list[tuple[str, str]]:
        """(sensor, rule) of every excursion in progress."""
        return sorted(self._peaks)

    def feed(self, seq: int, ts: int, readings: tuple[Reading, ...]) -> list[tuple[str, dict[str, Any]]]:
        """Account for one tick; return (event name, detail) for each change."""
        events: list[tuple[str, dict[str, Any]]] = []
        for reading in readings:
            self._fault_change(reading)
            if reading.value_c is None:
                continue
            events.extend(self._excursions(reading.sensor, reading.value_c, ts, seq))
            events.extend(self._stuck_value(reading.sensor, reading.value_c))
        return events

    def _fault_change(self, reading: Reading) -> None:
        # the fault reading itself is published; the log says it once per change, not per sample
        before = self._faults.get(reading.sensor)
        if reading.fault is not None and reading.fault != before:
            self._faults[reading.sensor] = reading.fault
            log.error("probe %s reports %s: check the probe and its wiring", reading.sensor, reading.fault)
        elif reading.fault is None and before is not None:
            del self._faults[reading.sensor]
            log.info("probe %s reads again (%.2f °C) after %s", reading.sensor, reading.value_c or 0.0, before)

    def _excursions(self, sensor: str, value: float, ts: int, seq: int) -> list[tuple[str, dict[str, Any]]]:
        if self.profile is None:
            return []
        if sensor not in self._trackers:
            self._trackers[sensor] = [ThresholdTracker(rule, sensor) for rule in self.profile.rules]
        events = []
        for tracker in self._trackers[sensor]:
            rule = tracker.rule
            key = (sensor, rule.name)
            if key in self._peaks:
                worse = max if rule.kind == "high" else min
                self._peaks[key] = worse(self._peaks[key], value)
            transition = tracker.feed(value, ts, seq)
            if transition is None:
                continue
            detail: dict[str, Any] = {
                "state": transition.state,
                "sensor": sensor,
                "rule": rule.name,
                "severity": rule.severity,
                "threshold_c": rule.threshold_c,
                "value_c": value,
                "started_ts": transition.started_ts,
                "seq": seq,
            }
            if transition.state == ACTIVE:
                self._peaks[key] = value
                log.warning("local excursion: %s %s %.2f °C beyond %.2f °C", sensor, rule.name, value, rule.threshold_c)
            else:
                detail["ended_ts"] = ts
                detail["peak_c"] = self._peaks.pop(key, value)
                log.warning("local excursion over: %s %s back at %.2f °C", sensor, rule.name, value)
            events.append(("excursion", detail))
        return events

    def _stuck_value(self, sensor: str, value: float) -> list[tuple[str, dict[str, Any]]]:
        if self.stuck_samples < 2:
            return []
        detector = self._stuck.setdefault(sensor, StuckDetector(self.stuck_samples))
        change = detector.feed(value)
        if change is True:
            log.error(
                "probe %s stuck at %.2f °C for %d samples: probe or board failed?", sensor, value, self.stuck_samples
            )
            return [("stuck_value", {"sensor": sensor, "value_c": value, "samples": self.stuck_samples})]
        if change is False:
            log.info("probe %s is changing again (%.2f °C)", sensor, value)
            return [("stuck_value_cleared", {"sensor": sensor, "value_c": value})]
        return []
