"""The gateway on a real broker and a real influxd: readings stored exactly, alarms raised once, bad input rejected."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gateway_helpers import (
    TS,
    Connect,
    GatewayProcess,
    count,
    gateway_config,
    telemetry,
    wait_until,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str):
    """A gateway on the session services, writing to the test's own database; crate {prefix}-D is on dry ice."""
    dry_ice = f'[crates."{crate_prefix}-D"]\nprofile = "dry_ice"\n'
    config = gateway_config(tmp_path, mosquitto, influxdb, database, dry_ice)
    process = GatewayProcess(config, tmp_path / "gateway.log")
    yield process
    assert process.stop() == 0, process.stderr()


def test_readings_are_stored_with_exact_values(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """Each reading becomes a temperature point: tags crate/profile/sensor, value_c float, seq integer, time = ts."""
    crate = f"{crate_prefix}-A"
    client = connect(mosquitto)
    client.send(crate, [1, 2], value=-171.25)
    wait_until(lambda: count(influxdb, database, crate) == 2, 10, "2 points")
    rows = influxdb.rows(f"SELECT value_c, seq, profile, sensor FROM temperature WHERE crate = '{crate}'", database)
    assert rows == [
        {"time": TS + 1000, "value_c": -171.25, "seq": 1, "profile": "cryo", "sensor": "probe1"},
        {"time": TS + 2000, "value_c": -171.25, "seq": 2, "profile": "cryo", "sensor": "probe1"},
    ]
    types = influxdb.rows("SHOW FIELD KEYS FROM temperature", database)
    assert {r["fieldKey"]: r["fieldType"] for r in types} == {"value_c": "float", "seq": "integer"}
    client.close()


def test_fault_reading_is_stored_as_fault_without_value(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """A probe fault is a temperature point with field fault and no value_c, so the hole is visible."""
    crate = f"{crate_prefix}-F"
    client = connect(mosquitto)
    client.send(crate, [1], value="OPEN")
    wait_until(lambda: count(influxdb, database, crate, "fault") == 1, 10, "fault point")
    rows = influxdb.rows(f"SELECT fault, seq, value_c FROM temperature WHERE crate = '{crate}'", database)
    assert rows == [{"time": TS + 1000, "fault": "OPEN", "seq": 1, "value_c": None}]
    client.close()


def test_a_corrected_time_is_stored_as_a_flag_on_each_reading(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """ts_corrected / ts_uncertain become boolean fields of the message's readings (a fault's too); others lack them."""
    crate = f"{crate_prefix}-K"
    client = connect(mosquitto)
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 1))
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 2, ts_corrected=True))
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 3, "OPEN", ts_uncertain=True))
    wait_until(lambda: count(influxdb, database, crate) == 3, 10, "3 points")
    query = f"SELECT seq, value_c, fault, ts_corrected, ts_uncertain FROM temperature WHERE crate = '{crate}'"
    got = [
        (r["seq"], r["value_c"], r["fault"], r["ts_corrected"], r["ts_uncertain"])
        for r in influxdb.rows(query, database)
    ]
    assert got == [(1, -170.0, None, None, None), (2, -170.0, None, True, None), (3, None, "OPEN", None, True)]
    types = influxdb.rows("SHOW FIELD KEYS FROM temperature", database)
    assert {r["fieldKey"]: r["fieldType"] for r in types if r["fieldKey"].startswith("ts_")} == {
        "ts_corrected": "boolean",
        "ts_uncertain": "boolean",
    }
    client.close()


def test_excursion_raises_exactly_one_retained_alarm(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """Warming past the limit gives one active alarm, on MQTT (retained) and in InfluxDB, with the crossing seq."""
    crate = f"{crate_prefix}-D"
    watcher = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    client = connect(mosquitto)
    for seq, value in enumerate([-78.0, -70.0, -59.5, -55.0, -52.0], start=1):
        client.send(crate, [seq], value=value)
    wait_until(lambda: count(influxdb, database, crate) == 5, 10, "5 points")
    alarms = wait_until(watcher.received, 5, "alarm on MQTT")
    assert len(alarms) == 1
    alarm = alarms[0]
    assert (alarm["crate"], alarm["rule"], alarm["sensor"]) == (crate, "critical_high", "probe1")
    assert alarm["state"] == "active"
    assert (alarm["seq"], alarm["ts"], alarm["value_c"], alarm["threshold_c"]) == (3, TS + 3000, -59.5, -60.0)
    assert (alarm["severity"], alarm["profile"]) == ("critical", "dry_ice")
    late = connect(mosquitto, [f"coldchain/v1/alarms/{crate}/#"])
    wait_until(lambda: late.messages, 5, "retained alarm")
    assert late.messages[0][0] == f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    assert late.messages[0][2] is True
    query = f"SELECT state, seq, value_c, threshold_c, rule FROM alarm WHERE crate = '{crate}'"
    rows = wait_until(lambda: influxdb.rows(query, database), 5, "alarm point")
    assert rows == [
        {
            "time": TS + 3000,
            "state": "active",
            "seq": 3,
            "value_c": -59.5,
            "threshold_c": -60.0,
            "rule": "critical_high",
        },
    ]
    for c in (watcher, late, client):
        c.close()


def test_invalid_message_is_rejected_and_valid_ones_behind_it_stored(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """Garbage is refused with a reason (log, topic, measurement rejected); the next valid message is stored."""
    crate = f"{crate_prefix}-R"
    watcher = connect(mosquitto, ["coldchain/v1/rejected"])
    client = connect(mosquitto)
    client.publish(f"coldchain/v1/crates/{crate}/telemetry", b"\xff not json")
    client.send(crate, [1])
    wait_until(lambda: count(influxdb, database, crate) == 1, 10, "valid point behind the garbage")
    rejected = wait_until(lambda: [r for r in watcher.received() if r.get("crate") == crate], 5, "reject on MQTT")
    assert rejected[0]["reason"] == "encoding"
    rows = influxdb.rows(f"SELECT reason, excerpt FROM rejected WHERE crate = '{crate}'", database)
    assert [(r["reason"], r["excerpt"]) for r in rows] == [("encoding", "\ufffd not json")]
    assert "rejected message" in gateway.stderr()
    for c in (watcher, client):
        c.close()


def test_a_burst_of_rejects_keeps_one_rejected_point_each(
    gateway, influxdb, mosquitto, database, crate_prefix, connect: Connect
) -> None:
    """Fifty implausible readings of one crate in a burst (many in the same millisecond): fifty rejected points."""
    crate = f"{crate_prefix}-B"
    client = connect(mosquitto)
    client.send(crate, range(1, 51), value=500.0)
    query = f"SELECT count(bytes) FROM rejected WHERE crate = '{crate}' AND reason = 'range'"

    def stored() -> int:
        rows = influxdb.rows(query, database)
        return rows[0]["count"] if rows else 0

    wait_until(lambda: stored() == 50, 10, "fifty rejected points")
    client.close()


def test_message_with_mqtt5_properties_is_decoded(gateway, mosquitto, influxdb, database, crate_prefix) -> None:
    """A publisher's MQTT 5 properties (user properties, content type, expiry) do not disturb the payload."""

    crate = f"{crate_prefix}-5"
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [("origin", "x" * 300), ("k", "v")]
    properties.ContentType = "application/json"
    properties.MessageExpiryInterval = 3600
    payload = telemetry(crate, 1, value=-165.5)
    publisher.publish(f"coldchain/v1/crates/{crate}/telemetry", payload, qos=1, properties=properties).wait_for_publish(
        5
    )
    wait_until(lambda: count(influxdb, database, crate) == 1, 10, "point")
    rows = influxdb.rows(f"SELECT value_c FROM temperature WHERE crate = '{crate}'", database)
    assert [r["value_c"] for r in rows] == [-165.5]
    publisher.disconnect()
    publisher.loop_stop()


def test_readings_that_once_stopped_the_gateway_are_rejected_and_it_carries_on(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """A fault that is an object and a value_c beyond a float: two rejects, the gateway up, the next reading stored."""
    crate = f"{crate_prefix}-H"
    topic = f"coldchain/v1/crates/{crate}/telemetry"
    watcher = connect(mosquitto, ["coldchain/v1/rejected", f"coldchain/v1/crates/{crate}/ack"])
    client = connect(mosquitto)
    fault = b'{"sensor":"probe1","value_c":null,"fault":{"OPEN":1}}'
    huge = b'{"sensor":"probe1","value_c":' + b"9" * 400 + b"}"
    for seq, reading in ((1, fault), (2, huge)):
        client.publish(topic, b'{"v":1,"crate":"%s","seq":%d,"ts":%d,"readings":[%s]}' % (
            crate.encode(), seq, TS + seq * 1000, reading))  # fmt: skip
    client.send(crate, [3])
    wait_until(lambda: count(influxdb, database, crate) == 1, 10, "the valid reading behind them")
    rows = influxdb.rows(f"SELECT reason, detail FROM rejected WHERE crate = '{crate}'", database)
    assert sorted(r["reason"] for r in rows) == ["range", "schema"]
    acks = wait_until(lambda: [a for a in watcher.received(f"coldchain/v1/crates/{crate}/ack")
                               if a["stored_through"] == 3], 10, "storage ack through seq 3")  # fmt: skip
    assert acks
    assert gateway.process.poll() is None
    assert "stopping the gateway" not in gateway.stderr()
    for c in (watcher, client):
        c.close()


def test_a_message_sent_at_qos0_is_stored_and_never_acknowledged(
    gateway, mosquitto, influxdb, database, crate_prefix, connect: Connect
) -> None:
    """Delivered at QoS 0 it has no packet id: a PUBACK for it would be a protocol error that drops the gateway."""
    crate = f"{crate_prefix}-Q"
    client = connect(mosquitto)
    for seq in (1, 2, 3):
        client._client.publish(f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, seq), qos=0)
    client.send(crate, [4])
    wait_until(lambda: count(influxdb, database, crate) == 4, 10, "the QoS 0 readings and the QoS 1 one")
    time.sleep(0.5)  # a protocol error would show as a lost connection right after the acknowledgements
    assert "lost broker" not in gateway.stderr()
    client.close()
