"""The board's HTTP side against a real broker and a real influxd: refusals, faults, chart data."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from board_helpers import (
    RunningBoard,
    alarm_payload,
    api,
    http,
    mqtt_client,
    publish,
    sign_in,
    start_board,
    write_config,
    write_points,
)
from wait_helpers import wait_until

from board.auth import SessionSigner
from cli.services import InfluxDB, Mosquitto, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def run_board() -> Iterator[Callable[[Path], RunningBoard]]:
    """Start boards for one test and stop them afterwards."""
    started: list[RunningBoard] = []

    def run(config: Path) -> RunningBoard:
        board = start_board(config)
        started.append(board)
        return board

    yield run
    for board in started:
        board.stop()


def _alarm_crates(board: RunningBoard, cookie: str) -> list[str]:
    return [a["crate"] for a in api(board, cookie, "/api/state")[1]["alarms"]]


def _signed_in(board: RunningBoard) -> tuple[str, str]:
    status, cookie = sign_in(board)
    assert status == 303
    csrf = api(board, cookie, "/api/me")[1]["csrf"]
    return cookie, csrf


def test_unauthenticated_requests_are_refused(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, run_board: Callable[..., RunningBoard]
) -> None:
    """Pages redirect to sign-in; data, events and acks answer 401; a forged cookie is no better."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    status, headers, _ = http(f"{board.url}/")
    assert (status, headers["Location"]) == (303, "/login?next=/")
    for path in ("/api/state", "/api/events", "/api/me", "/api/crates/C-1/history"):
        assert http(f"{board.url}{path}")[0] == 401, path
    assert http(f"{board.url}/api/ack", "POST", b"{}", {"Content-Type": "application/json"})[0] == 401
    forged = {"Cookie": "coldchain_board=b3Bz.9999999999.AAAA"}
    assert http(f"{board.url}/api/state", headers=forged)[0] == 401


def test_ack_without_csrf_token_is_refused_and_not_published(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, run_board: Callable
) -> None:
    """A signed-in POST without the page's CSRF token is refused and nothing reaches the acks topic."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, _ = _signed_in(board)
    crate = f"{crate_prefix}-x"
    with mqtt_client(mosquitto.port, subscribe=f"coldchain/v1/acks/{crate}/#") as (client, received):
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate))
        wait_until(lambda: crate in _alarm_crates(board, cookie), what="the alarm on the board")
        body = {"crate": crate, "rule": "critical_high", "sensor": "probe1", "by": "Eve", "note": "x"}
        status, answer = api(board, cookie, "/api/ack", body, csrf="wrong")
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", b"")
        assert received.empty()
    assert status == 403
    assert "CSRF" in answer["error"]


def test_ack_of_an_alarm_that_is_not_open_is_refused(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, run_board: Callable
) -> None:
    """Acknowledging an alarm the board does not show as active answers 409 and says why."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, csrf = _signed_in(board)
    body = {"crate": f"{crate_prefix}-n", "rule": "critical_high", "sensor": "probe1", "by": "Ana", "note": "x"}
    status, answer = api(board, cookie, "/api/ack", body, csrf=csrf)
    assert status == 409
    assert "no open alarm" in answer["error"]


def test_ack_with_missing_note_is_refused(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, run_board: Callable
) -> None:
    """Name and note are both required: an empty note answers 400 naming the field."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, csrf = _signed_in(board)
    body = {"crate": "C-1", "rule": "critical_high", "sensor": "probe1", "by": "Ana", "note": "  "}
    status, answer = api(board, cookie, "/api/ack", body, csrf=csrf)
    assert (status, answer["error"]) == (400, "'note' is required")


@pytest.mark.fault
def test_broker_loss_is_shown_and_acks_are_refused_until_it_returns(
    tmp_path: Path,
    make_mosquitto: Callable[[], Mosquitto],
    influxdb: InfluxDB,
    database: str,
    run_board: Callable,
) -> None:
    """With the broker stopped, open pages get a 'broker lost' event and an ack answers 503; after restart it is
    sent again (with no gateway here, the answer is 504: not confirmed)."""
    broker = make_mosquitto()
    board = run_board(write_config(tmp_path, broker.port, influxdb.url, database))
    cookie, csrf = _signed_in(board)
    with mqtt_client(broker.port) as (client, _):
        publish(client, "coldchain/v1/alarms/C-9/critical_high/probe1", alarm_payload("C-9"))
    wait_until(lambda: api(board, cookie, "/api/state")[1]["alarms"] != [], what="the alarm on the board")
    request = urllib.request.Request(f"{board.url}/api/events", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as stream:
        assert stream.readline() == b"event: snapshot\n"
        stream.readline()
        broker.stop()
        events = [stream.readline() for _ in range(3)]
    assert events[0] == b"\n"
    assert events[1] == b"event: broker\n"
    assert json.loads(events[2].removeprefix(b"data: "))["connected"] is False
    body = {"crate": "C-9", "rule": "critical_high", "sensor": "probe1", "by": "Ana", "note": "re-iced"}
    status, answer = api(board, cookie, "/api/ack", body, csrf=csrf)
    assert status == 503
    assert f"not connected to the broker at 127.0.0.1:{broker.port}" in answer["error"]
    broker.start()
    wait_until(lambda: json.loads(http(f"{board.url}/healthz")[2])["broker"], what="the board back on the broker")
    status, answer = api(board, cookie, "/api/ack", body, csrf=csrf)
    assert status == 504
    assert "the gateway did not answer within 2 s" in answer["error"]


def test_history_returns_the_values_stored_in_influxdb(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, run_board: Callable
) -> None:
    """The chart endpoint returns exactly the readings written, per sensor, with the profile's bands."""
    crate = f"H{os.getpid()}"
    now = int(time.time() * 1000)
    start = (now - 600_000) // 2000 * 2000  # on a bucket boundary (2 s buckets for one hour)
    write_points(
        influxdb.url,
        database,
        [
            f"temperature,crate={crate},profile=dry_ice,sensor=probe1 value_c=-78.25,seq=1i {start}",
            f"temperature,crate={crate},profile=dry_ice,sensor=probe1 value_c=-55.5,seq=2i {start + 60_000}",
            f"temperature,crate={crate},profile=dry_ice,sensor=probe2 value_c=-77.75,seq=2i {start + 60_000}",
            f"temperature,crate=other,profile=dry_ice,sensor=probe1 value_c=20.0,seq=2i {start + 60_000}",
        ],
    )
    crates = f'[[crates]]\nid = "{crate}"\nprofile = "dry_ice"\n'
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database, crates))
    cookie, _ = _signed_in(board)
    status, data = api(board, cookie, f"/api/crates/{crate}/history?hours=1")
    assert status == 200
    assert data["x"] == [start / 1000, (start + 60_000) / 1000]
    series = {s["label"]: s["values"] for s in data["series"]}
    assert series == {
        "probe1 max": [-78.25, -55.5],
        "probe1 min": [-78.25, -55.5],
        "probe2 max": [None, -77.75],
        "probe2 min": [None, -77.75],
    }
    assert data["bands"] == [{"rule": "critical_high", "kind": "high", "threshold_c": -60.0, "severity": "critical"}]
    assert data["excursions"] == [
        {"rule": "critical_high", "severity": "critical", "start": start + 60_000, "end": start + 62_000}
    ]


@pytest.mark.fault
def test_history_with_influxdb_unreachable_names_the_server(
    tmp_path: Path, mosquitto: Mosquitto, database: str, run_board: Callable
) -> None:
    """With nothing listening at the InfluxDB URL the chart endpoint answers 502 naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    board = run_board(write_config(tmp_path, mosquitto.port, url, database))
    cookie, _ = _signed_in(board)
    status, data = api(board, cookie, "/api/crates/C-1/history?hours=1")
    assert status == 502
    assert f"InfluxDB at {url} cannot be reached" in data["error"]


def test_invalid_alarm_is_ignored_and_the_board_keeps_going(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, run_board: Callable
) -> None:
    """A message breaking the alarm contract is logged with its reason; the next valid alarm still shows."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, _ = _signed_in(board)
    crate = f"{crate_prefix}-i"
    with mqtt_client(mosquitto.port) as (client, _):
        publish(client, f"coldchain/v1/alarms/{crate}/bad/probe1", b"{not json", retain=False)
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate), retain=False)
    wait_until(lambda: crate in _alarm_crates(board, cookie), what="the alarm on the board")
    assert f"{crate}/bad/probe1" not in json.dumps(api(board, cookie, "/api/state")[1])
    assert "ignored a message on coldchain/v1/alarms/" in board.log.read_text()


def test_proxy_mode_trusts_only_the_configured_header(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, run_board: Callable
) -> None:
    """Behind a signing-in proxy the header names the user; without it every request is refused."""
    extra = "[auth]\nmode = 'proxy'\nproxy_header = 'X-Remote-User'\n"
    config = write_config(tmp_path, mosquitto.port, influxdb.url, database, extra=extra)
    # proxy mode has no user list: drop the helper's [[auth.users]] entry
    text = config.read_text()
    start = text.index("[[auth.users]]")
    config.write_text(text[:start] + text[text.index("[mqtt]") :])
    board = run_board(config)
    status, _, body = http(f"{board.url}/api/me", headers={"X-Remote-User": "ana"})
    assert (status, json.loads(body)["user"]) == (200, "ana")
    assert http(f"{board.url}/api/me")[0] == 401
    assert http(f"{board.url}/login")[0] == 401


def test_history_of_a_database_that_does_not_exist_says_which(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, run_board: Callable
) -> None:
    """A database the gateway never created answers 502 naming the server and the database key."""
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, _ = _signed_in(board)
    status, data = api(board, cookie, "/api/crates/C-1/history?hours=1")
    assert status == 502
    assert f"InfluxDB at {influxdb.url} has no database '{database}'" in data["error"]


def test_event_stream_ends_when_its_session_expires(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, run_board: Callable
) -> None:
    """A session signed with the configured key works, and its open stream closes once it has expired."""
    key = "k" * 40
    (tmp_path / "session.key").write_text(key + "\n")
    extra = '[http]\nsession_key_file = "session.key"\n'
    config = write_config(tmp_path, mosquitto.port, influxdb.url, database)
    config.write_text(config.read_text().replace("[http]\n", extra, 1))
    board = run_board(config)
    # 3 s, not 1: the stream's first request must be answered inside the session's life on a loaded machine
    cookie = "coldchain_board=" + SessionSigner(key.encode(), lifetime_s=3.0).issue("ops", time.time())
    request = urllib.request.Request(f"{board.url}/api/events", headers={"Cookie": cookie})
    crate = f"{crate_prefix}-s"
    with urllib.request.urlopen(request, timeout=10) as stream:
        assert stream.readline() == b"event: snapshot\n"
        stream.readline()
        stream.readline()
        time.sleep(3.1)
        with mqtt_client(mosquitto.port) as (client, _):
            publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate), retain=False)
        rest = stream.read()
    assert crate.encode() not in rest
    assert http(f"{board.url}/api/state", headers={"Cookie": cookie})[0] == 401


def test_a_crate_that_vanishes_is_shown_offline_by_its_last_will(
    tmp_path: Path, make_mosquitto: Callable[[], Mosquitto], influxdb: InfluxDB, database: str, crate_prefix: str,
    run_board: Callable,
) -> None:
    """The will carries the crate's connect time, older than its 'online': the board still shows it offline."""
    mosquitto = make_mosquitto()  # its own: the crate's retained status stays behind
    board = run_board(write_config(tmp_path, mosquitto.port, influxdb.url, database))
    cookie, _ = _signed_in(board)
    crate = f"{crate_prefix}-w"
    topic = f"coldchain/v1/crates/{crate}/status"
    connected = int(time.time() * 1000)
    crate_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=crate)
    offline = json.dumps({"v": 1, "crate": crate, "state": "offline", "ts": connected}).encode()
    crate_client.will_set(topic, offline, qos=1, retain=True)
    crate_client.connect(mosquitto.host, mosquitto.port, keepalive=60)
    crate_client.loop_start()
    online = json.dumps({"v": 1, "crate": crate, "state": "online", "ts": connected + 5}).encode()
    crate_client.publish(topic, online, qos=1, retain=True).wait_for_publish(5)

    def state() -> str | None:
        crates = api(board, cookie, "/api/state")[1]["crates"]
        return next((c["state"] for c in crates if c["crate"] == crate), None)

    wait_until(lambda: state() == "online", what="the crate online")
    crate_client.loop_stop()
    crate_client.socket().close()  # the crate vanishes without a DISCONNECT: the broker sends its will
    wait_until(lambda: state() == "offline", what="the crate offline by its will")
