"""One bad retained message never blanks the board for everyone nor stops ``coldchain alerts`` (real processes,
each test on a broker of its own: the hostile retained messages must not reach other tests)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from board_helpers import RunningBoard, alarm_payload, http, mqtt_client, publish, sign_in, start_board, write_config
from wait_helpers import wait_until

from cli.alerts import main as alerts
from cli.services import InfluxDB, Mosquitto
from coldchain.topics import alarm_topic, status_topic, telemetry_topic

pytestmark = pytest.mark.integration

NOW_MS = int(time.time() * 1000)


def _hostile_alarms(crate: str) -> list[tuple[str, bytes]]:
    """Retained alarms a buggy or hostile publisher could leave: each decodes to nothing any page could show."""
    good = json.loads(alarm_payload(crate))
    fields: list[tuple[str, Any]] = [
        ("value_c", 10**400),
        ("threshold_c", "-150"),
        ("started_ts", 2**70),
        ("ts", -1),
        ("severity", {"critical": 1}),
        ("detail", json.loads("[" * 60 + "]" * 60)),
    ]
    messages = [
        (alarm_topic(crate, f"rule{i}", "probe1"), json.dumps({**good, "rule": f"rule{i}", field: value}).encode())
        for i, (field, value) in enumerate(fields)
    ]
    nan = json.dumps({**good, "rule": "nan", "value_c": float("nan")}).encode()
    messages.append((alarm_topic(crate, "nan", "probe1"), nan))
    messages.append((alarm_topic(crate, "bytes", "probe1"), b"\xff\xfe\x00{"))
    return messages


def _strict(raw: bytes) -> Any:
    """JSON as a browser's JSON.parse takes it: NaN or Infinity would fail there."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in the board's JSON")

    return json.loads(raw, parse_constant=refuse)


def _state(board: RunningBoard, cookie: str) -> Any:
    """/api/state, parsed strictly."""
    status, _, raw = http(f"{board.url}/api/state", headers={"Cookie": cookie})
    assert status == 200
    return _strict(raw)


def test_hostile_retained_messages_leave_the_board_showing_the_good_ones(
    tmp_path: Path, make_mosquitto: Callable[..., Mosquitto], influxdb: InfluxDB, database: str
) -> None:
    """Bad retained alarms and status and a telemetry the decoder trips on: the page's JSON is valid, the good shows."""
    broker = make_mosquitto()
    with mqtt_client(broker.port) as (client, _):
        publish(client, alarm_topic("C-GOOD", "critical_high", "probe1"), alarm_payload("C-GOOD"))
        for topic, payload in _hostile_alarms("C-BAD"):
            publish(client, topic, payload)
        publish(client, status_topic("C-BAD"), b'{"v":1,"crate":"C-BAD","state":"offline","ts":1e400}')
    board = start_board(write_config(tmp_path, broker.port, influxdb.url, database))
    try:
        _, cookie = sign_in(board)
        with mqtt_client(broker.port) as (client, _):
            reading = {"sensor": "probe1", "value_c": None, "fault": {"OPEN": 1}}
            bad = {"v": 1, "crate": "C-T", "seq": 1, "ts": NOW_MS, "readings": [reading]}
            publish(client, telemetry_topic("C-T"), json.dumps(bad).encode(), retain=False)
            good = {**bad, "seq": 2, "readings": [{"sensor": "probe1", "value_c": -170.0}]}
            publish(client, telemetry_topic("C-T"), json.dumps(good).encode(), retain=False)

        def shown() -> Any:
            state = _state(board, cookie)
            crates = {c["crate"]: c for c in state["crates"]}
            return state if "C-T" in crates and crates["C-T"]["readings"] else None

        state = wait_until(shown, 10, "the good telemetry after the bad one")
        assert [a["crate"] for a in state["alarms"]] == ["C-GOOD"]
        assert {c["crate"]: c["state"] for c in state["crates"]}.get("C-BAD", "unknown") == "unknown"
        assert board.process.poll() is None
    finally:
        board.stop()
    log = board.log.read_text()
    assert "ignored a message on coldchain/v1/alarms/C-BAD/nan/probe1" in log


def test_alerts_lists_the_good_alarms_beside_hostile_retained_ones(
    make_mosquitto: Callable[..., Mosquitto], capsys: pytest.CaptureFixture[str]
) -> None:
    """`coldchain alerts` names each unreadable retained message on stderr and still lists the good alarm."""
    broker = make_mosquitto()
    hostile = _hostile_alarms("C-BAD")
    with mqtt_client(broker.port) as (client, _):
        publish(client, alarm_topic("C-GOOD", "critical_high", "probe1"), alarm_payload("C-GOOD"))
        for topic, payload in hostile:
            publish(client, topic, payload)
        publish(client, status_topic("C-GOOD"), b'{"v":1,"crate":"C-GOOD","state":"offline","ts":[1]}')
    assert alerts(["--host", broker.host, "--port", str(broker.port)]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if "critical_high" in line]
    assert len(rows) == 1
    assert "C-GOOD" in rows[0]
    assert "C-BAD" not in captured.out
    for topic, _ in hostile:
        assert f"on {topic}:" in captured.err
    assert f"on {status_topic('C-GOOD')}:" in captured.err
    assert "internal error" not in captured.err
