"""Position and orientation events land in InfluxDB (measurements position, orientation, shock) via the real gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import TS, Client, GatewayProcess, gateway_config, wait_until
from hypothesis import given
from hypothesis import strategies as st

from cli.services import InfluxDB, Mosquitto
from coldchain.errors import WireFormatError
from coldchain.position.measurements import POSITION_EVENTS, position_point


def _event(client: Client, crate: str, ts: int, event: str, **fields: Any) -> None:
    body = {"v": 1, "crate": crate, "ts": ts, "event": event, "probe": "/dev/ttyACM0", **fields}
    client.publish(f"coldchain/v1/crates/{crate}/events", json.dumps(body).encode())


@pytest.mark.integration
def test_position_fix_loss_tilt_and_shock_are_stored_with_their_times(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str
) -> None:
    """A fix, its loss, a tip and its jolt: one point each, at the event's ts; a bad one is rejected, not stored."""
    crate = f"{crate_prefix}-P"
    gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gateway.log")
    client = Client(mosquitto)
    try:
        _event(client, crate, TS + 1000, "position", lat=34.4347, lon=135.244, speed_kmh=0.0, satellites=9)
        _event(client, crate, TS + 2000, "gps_no_fix", satellites=2)
        _event(client, crate, TS + 3000, "orientation", tilt_deg=88.5)
        _event(client, crate, TS + 3000, "shock", shock_g=3.5, tilt_deg=88.5)
        _event(client, crate, TS + 4000, "position", lat=95.0, lon=0.0)  # off the Earth: rejected
        where = f"WHERE crate = '{crate}'"
        rows = wait_until(
            lambda: (
                len(influxdb.rows(f"SELECT * FROM position {where}", database)) == 2
                and influxdb.rows(f"SELECT fix, lat, lon, speed_kmh, satellites FROM position {where}", database)
            ),
            10,
            "two position points",
        )
        assert rows == [
            {"time": TS + 1000, "fix": True, "lat": 34.4347, "lon": 135.244, "speed_kmh": 0.0, "satellites": 9},
            {"time": TS + 2000, "fix": False, "lat": None, "lon": None, "speed_kmh": None, "satellites": 2},
        ]
        assert influxdb.rows(f"SELECT tilt_deg FROM orientation {where}", database) == [
            {"time": TS + 3000, "tilt_deg": 88.5}
        ]
        assert influxdb.rows(f"SELECT shock_g, tilt_deg FROM shock {where}", database) == [
            {"time": TS + 3000, "shock_g": 3.5, "tilt_deg": 88.5}
        ]
        rejected = wait_until(lambda: influxdb.rows(f"SELECT detail FROM rejected {where}", database), 10, "reject")
        assert "'lat' 95.0 is not between -90 and 90" in rejected[0]["detail"]
    finally:
        client.close()
        assert gateway.stop() == 0, gateway.stderr()


json_value = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)


@given(
    event=st.sampled_from(sorted(POSITION_EVENTS)),
    body=st.dictionaries(st.sampled_from(["lat", "lon", "speed_kmh", "satellites", "tilt_deg", "shock_g"]), json_value),
)
def test_position_events_decode_totally(event: str, body: dict[str, Any]) -> None:
    """Any body of a position or orientation event gives one line of line protocol or a WireFormatError."""
    try:
        line = position_point("C-1", event, body, 1_764_086_400_000)
    except WireFormatError as exc:
        reason = exc.reason
    else:
        reason = ""
    if reason:
        assert reason == "schema"
        return
    assert line.startswith(("position,crate=C-1 ", "orientation,crate=C-1 ", "shock,crate=C-1 "))
    assert "\n" not in line
