"""The board end to end in headless Chromium: real board process, real mosquitto, real influxd."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from board_helpers import (
    RunningBoard,
    alarm_payload,
    http,
    mqtt_client,
    publish,
    start_board,
    write_config,
    write_points,
)
from browser_helpers import chromium, shot, signed_in
from gateway_helpers import (
    GatewayProcess,
    gateway_config,
    telemetry,
)
from playwright.sync_api import Browser, Page, expect

from cli.services import InfluxDB, Mosquitto
from coldchain.wire import decode_staff_ack

pytestmark = pytest.mark.integration

CRATE = f"B{os.getpid()}"
DATABASE = f"board{os.getpid()}"


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of this module's own: the board shows every retained alarm on its broker, and the tests count them,
    so alarms other test files left on the session broker (whichever ran before on this worker) must not reach it."""
    started = Mosquitto(tmp_path_factory.mktemp("board-broker")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto, influxdb: InfluxDB) -> Iterator[RunningBoard]:
    """One board for this module, watching the module's broker and the session influxd."""
    crates = f'[[crates]]\nid = "{CRATE}"\nprofile = "cryo"\nshipment = "SH-2026-0193"\ndestination = "Leiden"\n'
    running = start_board(
        write_config(tmp_path_factory.mktemp("board"), mosquitto.port, influxdb.url, DATABASE, crates)
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, board: RunningBoard) -> Iterator[Page]:
    """A signed-in page showing the live board."""
    with signed_in(browser, board, height=900) as shown:
        yield shown


def test_retained_alarm_appears_on_the_open_board_within_two_seconds(
    page: Page, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """An alarm published to the broker is on the page, at the top, in under 2 s, without a reload."""
    crate = f"{CRATE}-a"
    with mqtt_client(mosquitto.port) as (client, _):
        status = {"v": 1, "crate": crate, "state": "online", "ts": int(time.time() * 1000)}
        publish(client, f"coldchain/v1/crates/{crate}/status", json.dumps(status).encode())
        started = time.monotonic()
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate))
        row = page.locator(f'.alarm[data-alarm="{crate}/critical_high/probe1"]')
        row.wait_for(state="visible", timeout=2000)
        elapsed = time.monotonic() - started
        publish(
            client,
            f"coldchain/v1/alarms/{crate}/warning_high/probe1",
            alarm_payload(crate, "warning_high", severity="warning"),
        )
        expect(page.locator(".alarm")).to_have_count(2, timeout=2000)
    assert elapsed < 2.0
    assert page.locator(".alarm").first.get_attribute("data-alarm") == f"{crate}/critical_high/probe1"
    expect(row.locator(".badge")).to_have_text("CRITICAL")
    expect(page.locator(f'.crate[data-crate="{crate}"] .alarm-count')).to_have_text("2 alarms")
    shot(page, tmp_path, "board.png")
    with mqtt_client(mosquitto.port) as (client, _):  # leave the module's broker as we found it
        for rule in ("critical_high", "warning_high"):
            publish(client, f"coldchain/v1/alarms/{crate}/{rule}/probe1", b"")
    expect(page.locator(".alarm")).to_have_count(0, timeout=2000)


def test_ack_from_the_page_reaches_the_broker(page: Page, mosquitto: Mosquitto) -> None:
    """Name and note typed on the page arrive on the acks topic as the staff-ack contract says; with no gateway to
    answer, the row says the acknowledgement was not confirmed."""
    crate = f"{CRATE}-k"
    topic = f"coldchain/v1/acks/{crate}/critical_high/probe1"
    with mqtt_client(mosquitto.port, subscribe=topic) as (client, received):
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", alarm_payload(crate))
        row = page.locator(f'.alarm[data-alarm="{crate}/critical_high/probe1"]')
        row.locator(".ack-button").click()
        row.locator("input[name=by]").fill("Ana Souza")
        row.locator("input[name=note]").fill("shipper re-filled with LN2 at hub")
        clicked_ms = int(time.time() * 1000)
        row.locator("button[type=submit]").click()
        message = received.get(timeout=5)
        # no gateway on this broker in this test: nothing may say it was recorded
        expect(row.locator(".ack-result")).to_contain_text("Sent. Waiting for the gateway")
        expect(row.locator(".ack-result")).to_contain_text("the gateway did not answer within 2 s", timeout=5000)
        publish(client, f"coldchain/v1/alarms/{crate}/critical_high/probe1", b"")
    ack = json.loads(message.payload)
    assert decode_staff_ack(message.payload, (crate, "critical_high", "probe1")).by == "Ana Souza"
    assert message.topic == topic
    assert message.qos == 1
    assert {k: ack[k] for k in ("v", "crate", "rule", "sensor", "by", "note")} == {
        "v": 1,
        "crate": crate,
        "rule": "critical_high",
        "sensor": "probe1",
        "by": "Ana Souza",
        "note": "shipper re-filled with LN2 at hub",
    }
    assert clicked_ms - 1000 <= ack["ts"] <= int(time.time() * 1000)


def test_unauthenticated_browser_lands_on_sign_in_and_api_is_refused(browser: Browser, board: RunningBoard) -> None:
    """Without signing in the board shows only the sign-in form, and the data endpoints answer 401."""
    context = browser.new_context()
    anonymous = context.new_page()
    anonymous.goto(f"{board.url}/crates/{CRATE}")
    assert anonymous.url.startswith(f"{board.url}/login")
    expect(anonymous.locator("input[name=password]")).to_be_visible()
    assert anonymous.request.get(f"{board.url}/api/state").status == 401
    context.close()
    assert http(f"{board.url}/api/events")[0] == 401


def test_wrong_password_is_refused_in_the_browser(browser: Browser, board: RunningBoard) -> None:
    """A wrong password keeps the user on the sign-in page with a message, and no session cookie."""
    context = browser.new_context()
    login = context.new_page()
    login.goto(f"{board.url}/login")
    login.fill("input[name=user]", "ops")
    login.fill("input[name=password]", "not the password")
    login.click("button[type=submit]")
    expect(login.locator("#login-error")).to_have_text("Wrong name or password.")
    assert context.cookies() == []
    context.close()


def test_crate_page_charts_history_with_limit_bands_and_excursion(
    page: Page, board: RunningBoard, influxdb: InfluxDB, tmp_path: Path
) -> None:
    """The crate page draws the shipment's readings from InfluxDB and reports the excursion it shades."""
    now = int(time.time() * 1000)
    # an hour at -175 °C, a 10-minute warm spell to -145 °C (critical), then back
    values = [-175.0 + (30.0 if 30 <= k < 40 else 0.0) for k in range(60)]
    lines = [
        f"temperature,crate={CRATE},profile=cryo,sensor=probe1 value_c={v},seq={k}i {now - (60 - k) * 60_000}"
        for k, v in enumerate(values)
    ]
    write_points(influxdb.url, DATABASE, lines)
    page.goto(f"{board.url}/crates/{CRATE}")
    page.locator("#window-picker button[data-hours='6']").click()
    status = page.locator("#chart-status")
    expect(status).to_contain_text("60 points", timeout=5000)
    expect(status).to_contain_text("excursion span")
    expect(page.locator("#chart canvas")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("SH-2026-0193")
    shot(page, tmp_path, "crate.png")


def test_release_decision_from_the_crate_page_is_recorded(
    page: Page, board: RunningBoard, influxdb: InfluxDB, tmp_path: Path
) -> None:
    """The crate page shows the verdict and data hash a release rests on; a decision sent from it is recorded
    for the signed-in login and listed on the page as taken on this data."""
    crate = f"{CRATE}-r"
    now = int(time.time() * 1000)
    lines = [
        f"temperature,crate={crate},profile=cryo,sensor=probe1 value_c=-170.0,seq={k}i {now - (10 - k) * 30_000}"
        for k in range(10)
    ]
    write_points(influxdb.url, DATABASE, lines)
    page.goto(f"{board.url}/crates/{crate}")
    expect(page.locator("#release-verdict")).to_have_text("Verdict: within profile", timeout=5000)
    expect(page.locator("#release-sha")).to_have_text(re.compile("^[0-9a-f]{64}$"))
    page.select_option("#release-decision", "released")
    page.fill("#release-note", "record complete")
    page.locator("#release-form button[type=submit]").click()
    expect(page.locator("#release-result")).to_have_text("Recorded: released by ops", timeout=5000)
    expect(page.locator("#release-decisions")).to_contain_text("RELEASED by ops: record complete (on this data)")
    rows = influxdb.rows(f"SELECT * FROM release WHERE crate = '{crate}'", DATABASE)
    assert [(r["by"], r["decision"]) for r in rows] == [("ops", "released")]
    shot(page, tmp_path, "release.png")


def test_crate_card_follows_telemetry_and_goes_offline_live(page: Page, mosquitto: Mosquitto) -> None:
    """A reading and then the crate's offline last will change its card without a reload."""
    crate = f"{CRATE}-t"
    now = int(time.time() * 1000)
    with mqtt_client(mosquitto.port) as (client, _):
        status = {"v": 1, "crate": crate, "state": "online", "ts": now}
        publish(client, f"coldchain/v1/crates/{crate}/status", json.dumps(status).encode())
        reading = {"v": 1, "crate": crate, "seq": 1, "ts": now, "readings": [{"sensor": "probe1", "value_c": -171.26}]}
        publish(client, f"coldchain/v1/crates/{crate}/telemetry", json.dumps(reading).encode(), retain=False)
        card = page.locator(f'.crate[data-crate="{crate}"]')
        expect(card.locator(".temp")).to_have_text("-171.3 °C", timeout=2000)
        expect(card.locator(".state-badge")).to_have_text("ONLINE")
        status = {"v": 1, "crate": crate, "state": "offline", "ts": now + 1}
        publish(client, f"coldchain/v1/crates/{crate}/status", json.dumps(status).encode())
        expect(card.locator(".state-badge")).to_have_text("OFFLINE", timeout=2000)
        publish(client, f"coldchain/v1/crates/{crate}/status", b"")


def test_excursion_raised_by_the_real_gateway_appears_within_two_seconds(
    page: Page, mosquitto: Mosquitto, influxdb: InfluxDB, tmp_path: Path
) -> None:
    """A reading above the cryo limit goes through the gateway, and its alarm is on the open board in under 2 s."""
    crate = f"{CRATE}-g"
    database = f"boardgw{os.getpid()}"
    gateway = GatewayProcess(
        gateway_config(tmp_path, mosquitto, influxdb, database, client_id=f"gw-{crate}"), tmp_path / "gateway.log"
    )
    try:
        now = int(time.time() * 1000)
        with mqtt_client(mosquitto.port) as (client, _):
            publish(client, f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 1, -170.0, ts=now), False)
            started = time.monotonic()
            publish(client, f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 2, -145.0, ts=now + 1000), False)
            row = page.locator(f'.alarm[data-alarm="{crate}/critical_high/probe1"]')
            row.wait_for(state="visible", timeout=2000)
            elapsed = time.monotonic() - started
        expect(row.locator(".value")).to_have_text("-145.0 °C when raised")
        expect(page.locator(f'.crate[data-crate="{crate}"] .temp')).to_have_text("-145.0 °C")
    finally:
        gateway.stop()
        with mqtt_client(mosquitto.port) as (client, _):  # leave the module's broker as we found it
            for rule in ("critical_high", "warning_high"):
                publish(client, f"coldchain/v1/alarms/{crate}/{rule}/probe1", b"")
    assert elapsed < 2.0


def test_ack_from_the_page_reaches_the_gateway(
    page: Page, mosquitto: Mosquitto, influxdb: InfluxDB, tmp_path: Path
) -> None:
    """An ack typed on the page is recorded by the real gateway: the alarm turns acknowledged, by that name."""
    crate = f"{CRATE}-a"
    database = f"boardack{os.getpid()}"
    gateway = GatewayProcess(
        gateway_config(tmp_path, mosquitto, influxdb, database, client_id=f"gw-{crate}"), tmp_path / "gateway.log"
    )
    topic = f"coldchain/v1/alarms/{crate}/critical_high/probe1"
    try:
        now = int(time.time() * 1000)
        with mqtt_client(mosquitto.port, subscribe=topic) as (client, received):
            publish(client, f"coldchain/v1/crates/{crate}/telemetry", telemetry(crate, 1, -145.0, ts=now), False)
            row = page.locator(f'.alarm[data-alarm="{crate}/critical_high/probe1"]')
            row.wait_for(state="visible", timeout=5000)
            row.locator(".ack-button").click()
            row.locator("input[name=by]").fill("Ana Souza")
            row.locator("input[name=note]").fill("re-iced at the hub")
            row.locator("button[type=submit]").click()
            deadline = time.monotonic() + 10
            state: dict[str, object] = {}
            while state.get("state") != "acknowledged" and time.monotonic() < deadline:
                message = received.get(timeout=max(0.1, deadline - time.monotonic()))
                state = json.loads(message.payload) if message.payload else {}
            assert (state.get("state"), state.get("acknowledged_by")) == ("acknowledged", "Ana Souza")
            expect(row.locator(".acked")).to_contain_text("acknowledged by Ana Souza", timeout=3000)
            expect(row.locator(".ack-result")).to_have_text("Acknowledgement recorded by the gateway: Ana Souza.")
    finally:
        gateway.stop()
        with mqtt_client(mosquitto.port) as (client, _):  # leave the module's broker as we found it
            for rule in ("critical_high", "warning_high"):
                publish(client, f"coldchain/v1/alarms/{crate}/{rule}/probe1", b"")
