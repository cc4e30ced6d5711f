"""InfluxDB 1.x behaviours the gateway must survive: points refused for good, a database dropped under it."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from gateway_helpers import (
    TS,
    Connect,
    GatewayProcess,
    count,
    gateway_config,
    wait_until,
)

from cli.services import InfluxDB, ServiceError

pytestmark = pytest.mark.integration


def _post(influxdb: InfluxDB, path: str, params: dict[str, str], body: bytes = b"") -> None:
    url = f"{influxdb.url}{path}?{urllib.parse.urlencode(params)}"
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10).close()


def _written(influxdb: InfluxDB, database: str, body: bytes) -> bool:
    """Write ``body``; False while influxd says the database is not there yet."""
    try:
        _post(influxdb, "/write", {"db": database, "precision": "ms"}, body)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def test_refused_point_is_quarantined_and_the_rest_stored(
    tmp_path: Path, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """A field type conflict (HTTP 400) quarantines that point in 'rejected'; its neighbours are stored."""
    crate = f"{crate_prefix}-Q"
    _post(influxdb, "/query", {"q": f'CREATE DATABASE "{database}"'})
    # 'fault' already exists as a float in this shard, so the gateway's string fault conflicts
    conflicting = f"temperature,crate=other fault=1.0 {TS}".encode()
    # a loaded influxd once answered this first write 'database not found' (404) right after the CREATE
    wait_until(lambda: _written(influxdb, database, conflicting), 10, "the conflicting point written")
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    client = connect(mosquitto, [f"coldchain/v1/crates/{crate}/ack"])
    client.send(crate, [1], value=-170.0)
    client.send(crate, [2], value="OPEN")
    client.send(crate, [3], value=-170.0)
    wait_until(lambda: {"v": 1, "crate": crate, "stored_through": 3} in client.received(), 10, "stored_through 3")
    assert count(influxdb, database, crate, "value_c") == 2
    rows = influxdb.rows(f"SELECT reason, excerpt FROM rejected WHERE crate = '{crate}'", database)
    assert [r["reason"] for r in rows] == ["store_refused"]
    assert 'fault="OPEN",seq=2i' in str(rows[0]["excerpt"])
    assert gateway.stop() == 0
    client.close()


def test_dropped_database_is_created_again(
    tmp_path: Path, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """The gateway never caches 'database exists': a write that finds it dropped creates it and retries."""
    crate = f"{crate_prefix}-W"
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    client = connect(mosquitto)
    client.send(crate, [1])
    wait_until(lambda: count(influxdb, database, crate) == 1, 10, "first point")
    _post(influxdb, "/query", {"q": f'DROP DATABASE "{database}"'})
    client.send(crate, [2])

    def recreated_with_one_point() -> bool:
        try:
            return count(influxdb, database, crate) == 1
        except ServiceError as exc:  # until the gateway's next write has created it again
            # influxd answers 'engine is closed' to a query that meets the dropped shard while it closes
            if "database not found" not in str(exc) and "engine is closed" not in str(exc):
                raise
            return False

    wait_until(recreated_with_one_point, 10, "point in the recreated database")
    rows = influxdb.rows(f"SELECT seq FROM temperature WHERE crate = '{crate}'", database)
    assert [r["seq"] for r in rows] == [2]
    assert gateway.stop() == 0
    client.close()


def test_retention_policy_is_written_to(
    tmp_path: Path, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """[influxdb] retention_policy sends points into that policy, not the database's default."""
    crate = f"{crate_prefix}-P"
    _post(influxdb, "/query", {"q": f'CREATE DATABASE "{database}"'})
    _post(influxdb, "/query", {"q": f'CREATE RETENTION POLICY "keep" ON "{database}" DURATION 0s REPLICATION 1'})
    config = gateway_config(tmp_path, mosquitto, influxdb, database, influx_extra='retention_policy = "keep"')
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    client = connect(mosquitto)
    client.send(crate, [1])
    query = f'SELECT seq FROM "{database}"."keep".temperature WHERE crate = \'{crate}\''
    rows = wait_until(lambda: influxdb.rows(query, database), 10, "point in retention policy keep")
    assert [r["seq"] for r in rows] == [1]
    assert count(influxdb, database, crate) == 0  # nothing in the default policy
    assert gateway.stop() == 0
    client.close()
