"""The alarm audit trail, written to a real InfluxDB and read back."""

from __future__ import annotations

import urllib.request

import pytest

from cli.services import InfluxDB
from coldchain.alarms.lifecycle import AlarmBook, LifecyclePolicy
from coldchain.alarms.transition import AlarmTransition
from coldchain.wire import StaffAck
from gateway.notify.audit import audit_point


def _write(influxdb: InfluxDB, database: str, lines: list[str]) -> None:
    influxdb.query(f'CREATE DATABASE "{database}"', database)
    request = urllib.request.Request(
        f"{influxdb.url}/write?db={database}&precision=ms", data="\n".join(lines).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


@pytest.mark.integration
def test_audit_trail_records_who_what_when(influxdb: InfluxDB, database: str) -> None:
    """Raise, acknowledge and clear land as three alarm points with who (by), note and times; the escalation is a
    time on the raising point, so state 'active' lists the excursion once."""
    book = AlarmBook(LifecyclePolicy(escalate_after_s={"warning": 60}))
    raised = AlarmTransition("warning_high", "high", "warning", "probe1", "active", 1_000_000, 990_000, 17, -159.5)
    events = book.apply("C-9", raised, 1_000_000, "cryo", "SH-1")
    events += book.tick(1_060_000)
    events.append(book.acknowledge(StaffAck("C-9", "warning_high", "probe1", "Ana Ruiz", "lid re-seated", 1_100_000)))
    cleared = AlarmTransition("warning_high", "high", "warning", "probe1", "cleared", 1_200_000, 990_000, 40, -163.0)
    events += book.apply("C-9", cleared, 1_200_000, "cryo", "SH-1")
    _write(influxdb, database, [audit_point(e) for e in events])
    rows = influxdb.rows(
        'SELECT "change", "state", "seq", "started_ts", "escalated_ts", "by", "note", "id" FROM "alarm"'
        """ WHERE "shipment" = 'SH-1' GROUP BY *""",
        database,
    )
    got = [(r["time"], r["change"], r["state"], r["seq"], r["escalated_ts"], r["by"], r["note"]) for r in rows]
    assert sorted(got) == [
        (1_000_000, "active", "active", 17, 1_060_000, None, None),
        (1_100_000, "acknowledged", "acknowledged", 17, None, "Ana Ruiz", "lid re-seated"),
        (1_200_000, "cleared", "cleared", 40, None, None, None),
    ]
    assert {(r["id"], r["started_ts"], r["crate"], r["profile"]) for r in rows} == {
        ("C-9/warning_high/probe1/990000", 990_000, "C-9", "cryo")
    }
