"""Self-monitoring: the gateway's own figures, as InfluxDB measurement ``gateway`` and a health file.

``gateway`` (tag gateway = client id), every ``[monitoring] interval``: fields
received, readings, duplicates, late, alarms, rejected (total) and
rejected_<reason>, readings_per_s (since the last point), queue_depth (messages held
un-acknowledged), held_max (the most held at once since the start), batches,
write_failures, quarantined, write_ms (last write), open_gaps, crates, connected,
write_failing_s (how long the current write has been failing, 0 when fine).
The health file holds the same figures as JSON plus ``ts`` (epoch ms);
``coldchain gateway --config FILE --health`` reads it for systemd and monitoring.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.influx_write import Writer
from coldchain.errors import StoreError
from coldchain.record.lineprotocol import FieldValue
from gateway.points import health_point
from gateway.worker import Worker

__all__ = ["Health", "read_health"]

log = logging.getLogger(__name__)


class Health:
    """Called on every tick of the worker's clock; reports once per interval."""

    def __init__(
        self,
        worker: Worker,
        store: Writer,
        client_id: str,
        interval_s: float,
        health_file: Path | None,
        *,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        """``store``: a connection of the clock's thread (the writer thread owns the worker's);
        ``connected``: whether the broker is connected now."""
        self.worker = worker
        self.store = store
        self.client_id = client_id
        self.interval_s = interval_s
        self.health_file = health_file
        self.connected = connected
        self._next = time.monotonic()  # the first report (and health file) right away
        self._last_readings = 0
        self._last_at = time.monotonic()

    def figures(self, now: float) -> dict[str, FieldValue]:
        """The current figures (rates since the previous call)."""
        ingest, worker = self.worker.ingest, self.worker
        elapsed = max(now - self._last_at, 1e-9)
        rate = (ingest.readings - self._last_readings) / elapsed
        rejects = ingest.rejected()
        if worker.quarantined:  # points InfluxDB refused for good: rejected too, by the writer
            rejects["store_refused"] += worker.quarantined
        self._last_readings, self._last_at = ingest.readings, now
        fields: dict[str, FieldValue] = {
            "received": ingest.received,
            "readings": ingest.readings,
            "duplicates": ingest.duplicates,
            "late": ingest.late,
            "alarms": ingest.alarms,
            "rejected": sum(rejects.values()),
            "readings_per_s": round(rate, 1),
            "queue_depth": worker.held,
            "held_max": worker.held_max,
            "batches": worker.batches,
            "write_failures": worker.write_failures,
            "quarantined": worker.quarantined,
            "write_ms": round(worker.last_write_ms, 2),
            "open_gaps": sum(len(s.seqs.gaps) for s in ingest.crates.values()),
            "crates": len(ingest.crates),
            "connected": self.connected(),
            "write_failing_s": round(time.time() - worker.failing_since, 1) if worker.failing_since else 0.0,
        }
        for reason, n in sorted(rejects.items()):
            fields[f"rejected_{reason}"] = n
        return fields

    def tick(self, now: float) -> None:
        """Report when the interval has passed."""
        if self.interval_s <= 0 or now < self._next:
            return
        self._next = now + self.interval_s
        fields = self.figures(now)
        now_ms = int(time.time() * 1000)
        if self.health_file is not None:
            self._write_health({"ts": now_ms, **fields})
        try:
            self.store.write(health_point(self.client_id, fields, now_ms).encode())
        except StoreError as exc:
            log.warning("could not write the gateway's own figures: %s", exc)

    def _write_health(self, body: dict[str, Any]) -> None:
        assert self.health_file is not None
        temporary = self.health_file.with_name(self.health_file.name + ".tmp")
        try:
            temporary.write_text(json.dumps(body, indent=1))
            os.replace(temporary, self.health_file)
        except OSError as exc:  # monitoring must never stop the ingest
            log.warning("cannot write the health file %s: %s", self.health_file, exc)


def read_health(path: Path, interval_s: float) -> tuple[bool, str]:
    """(healthy, text): healthy when the file is fresh (3 intervals) and the broker connected."""
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return False, f"no health file at {path} ({exc}): is the gateway running with [monitoring] health_file?"
    age_s = time.time() - body.get("ts", 0) / 1000
    problems = []
    if age_s > 3 * interval_s:
        problems.append(
            f"health file is {age_s:.0f} s old (interval {interval_s:g} s): the gateway is stuck or stopped"
        )
    if not body.get("connected"):
        problems.append("not connected to the broker")
    if body.get("write_failing_s", 0) > 0:
        problems.append(f"InfluxDB writes failing for {body['write_failing_s']} s")
    text = json.dumps(body, indent=1)
    if problems:
        text += "\nUNHEALTHY: " + "; ".join(problems)
    return not problems, text
