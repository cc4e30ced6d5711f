"""The board in headless Chromium, on a broker of its own with a real gateway: what the gateway answers to an
acknowledgement, the needs-review section, each crate's excursion history, and the board's configured details."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from board_helpers import RunningBoard, alarm_payload, mqtt_client, publish, start_board, write_config
from board_helpers import write_points as write_influx
from browser_helpers import chromium, shot, signed_in
from gateway_helpers import GatewayProcess, gateway_config, telemetry
from playwright.sync_api import Browser, Page, expect
from wait_helpers import wait_until

from cli.services import InfluxDB, Mosquitto

pytestmark = pytest.mark.integration

TITLE = "Leiden hub — cryo watch"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of this module's own: the retained alarms these tests leave stay on it."""
    started = Mosquitto(tmp_path_factory.mktemp("review-broker")).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def database() -> str:
    """This module's database (the gateway and the tests write it, the board reads it)."""
    return f"review{os.getpid()}"


@pytest.fixture(scope="module")
def board(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, influxdb: InfluxDB, database: str
) -> Iterator[RunningBoard]:
    """A board with a configured title and chart window, watching this module's broker and database."""
    crates = '[[crates]]\nid = "R-CONF"\nshipment = "SHP-CONF"\n'
    config = write_config(tmp_path_factory.mktemp("review-board"), broker.port, influxdb.url, database, crates)
    text = config.read_text().replace("[board]\n", f'[board]\ntitle = "{TITLE}"\n', 1)
    config.write_text(text.replace("timeout_s = 3.0\n", "timeout_s = 3.0\nchart_hours = 3\nhistory_refresh_s = 5\n"))
    running = start_board(config)
    yield running
    running.stop()


@pytest.fixture
def gateway(tmp_path: Path, broker: Mosquitto, influxdb: InfluxDB, database: str) -> Iterator[GatewayProcess]:
    """A real gateway on this module's broker, with crates R-G and R-V on shipment SHP-RG."""
    directory = tmp_path
    shipments = '[shipments."SHP-RG"]\norigin = "Kyoto"\ndestination = "Leiden"\ncrates = ["R-G", "R-V"]\n'
    with GatewayProcess(gateway_config(directory, broker, influxdb, database, shipments), directory / "gw.log") as gw:
        yield gw


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, board: RunningBoard) -> Iterator[Page]:
    """A signed-in page showing the board."""
    with signed_in(browser, board, height=1000) as shown:
        yield shown


def _ack_on_page(row: object, by: str, note: str) -> None:
    row.locator(".ack-button").click()  # type: ignore[attr-defined]
    row.locator("input[name=by]").fill(by)  # type: ignore[attr-defined]
    row.locator("input[name=note]").fill(note)  # type: ignore[attr-defined]
    row.locator("button[type=submit]").click()  # type: ignore[attr-defined]


def test_board_shows_the_gateways_answers_and_the_needs_review_section(
    page: Page, broker: Mosquitto, influxdb: InfluxDB, database: str, tmp_path: Path, gateway: GatewayProcess
) -> None:
    """Recorded: the row says so; refused: the row says why; an excursion that cleared unacknowledged waits under
    its shipment in Needs review until reviewed, and the crate's card lists it since departure."""
    now = int(time.time() * 1000)
    with mqtt_client(broker.port) as (client, _):
        for seq, value in enumerate([-175.0, -145.0], 1):  # R-G: critical, stays
            publish(
                client, "coldchain/v1/crates/R-G/telemetry", telemetry("R-G", seq, value, ts=now - 5000 + seq), False
            )
        for seq, value in enumerate([-175.0, -155.0, -176.0], 1):  # R-V: a warning that cleared unacknowledged
            publish(
                client, "coldchain/v1/crates/R-V/telemetry", telemetry("R-V", seq, value, ts=now - 5000 + seq), False
            )
        # an alarm the gateway never raised (a stale retained message): the gateway will refuse its ack
        publish(client, "coldchain/v1/alarms/R-X/critical_high/probe1", alarm_payload("R-X"))
    live = page.locator('#alarms .alarm[data-alarm="R-G/critical_high/probe1"]')
    live.wait_for(state="visible", timeout=5000)
    expect(live.locator(".value")).to_have_text("-145.0 °C when raised")
    expect(live.locator(".now")).to_have_text("now -145.0 °C")
    review = page.locator('#review .alarm[data-alarm="R-V/warning_high/probe1"]')
    review.wait_for(state="visible", timeout=5000)
    expect(page.locator("#review .shipment-title")).to_have_text("Shipment SHP-RG · Kyoto → Leiden")
    expect(review.locator(".tag.late")).to_have_text("cleared before anyone acknowledged it")
    card = page.locator('.crate[data-crate="R-V"]')
    expect(card.locator(".review-count")).to_have_text("1 to review")
    expect(card.locator(".history-head")).to_contain_text("1 alarm on this shipment", timeout=8000)
    expect(card.locator(".x-who")).to_have_text("needs review")
    shot(page, tmp_path, "board-review.png")

    _ack_on_page(live, "Ana Souza", "re-iced at the hub")
    expect(page.locator("#notice")).to_have_text(
        "R-G critical high · probe1: Acknowledgement recorded by the gateway: Ana Souza.", timeout=8000
    )
    expect(live.locator(".acked")).to_contain_text("acknowledged by Ana Souza")

    refused = page.locator('#alarms .alarm[data-alarm="R-X/critical_high/probe1"]')
    _ack_on_page(refused, "Ana Souza", "on it")
    expect(refused.locator(".ack-result")).to_contain_text(
        "Refused by the gateway — ack_rejected: acknowledgement by 'Ana Souza' refused: no alarm R-X", timeout=8000
    )

    _ack_on_page(review, "Ana Souza", "cells inspected: viable, QA told")
    expect(page.locator("#notice")).to_have_text(
        "R-V warning high · probe1: Review recorded by the gateway: Ana Souza.", timeout=8000
    )
    expect(page.locator("section.needs-review")).to_be_hidden()
    expect(card.locator(".x-who")).to_have_text("seen by Ana Souza")
    query = 'SELECT "by" FROM "alarm" WHERE "crate" = \'R-V\' AND "state" = \'acknowledged\''
    rows = wait_until(lambda: influxdb.rows(query, database), 10, "the review's audit point")
    assert [r["by"] for r in rows] == ["Ana Souza"]
    shot(page, tmp_path, "board-reviewed.png")


def test_late_excursion_needs_review_under_its_shipment(page: Page, broker: Mosquitto) -> None:
    """A late alarm (cleared while the crate was offline, delivered with its backlog) is listed as late, not green."""
    now = int(time.time() * 1000)
    late = alarm_payload(
        "R-L", state="cleared", late=True, shipment="SHP-L", product="iPSC neurons", ended_ts=now - 3_600_000,
        started_ts=now - 7_200_000, id=f"R-L/critical_high/probe1/{now - 7_200_000}",
    )  # fmt: skip
    with mqtt_client(broker.port) as (client, _):
        publish(client, "coldchain/v1/alarms/R-L/critical_high/probe1", late)
    row = page.locator('#review .alarm[data-alarm="R-L/critical_high/probe1"]')
    row.wait_for(state="visible", timeout=5000)
    expect(row.locator(".tag.late")).to_have_text("late: happened while the crate was offline")
    expect(row.locator(".when-span")).to_contain_text("(1 h 0 min)")
    expect(page.locator("#review .shipment-title").filter(has_text="SHP-L")).to_have_text(
        "Shipment SHP-L · iPSC neurons"
    )
    card = page.locator('.crate[data-crate="R-L"]')
    expect(card.locator(".x-who")).to_have_text("late, needs review")
    expect(card.locator(".shipment")).to_have_text("shipment SHP-L")


def test_stored_shipment_and_excursions_show_on_a_card_without_config_or_retained_alarm(
    page: Page, influxdb: InfluxDB, database: str
) -> None:
    """A crate only InfluxDB knows (its shipment point and an alarm that cleared and was acknowledged) shows its
    shipment and that excursion since departure."""
    now = int(time.time() * 1000)
    started = now - 1_800_000
    write_influx(influxdb.url, database, [
        f'shipment,crate=R-S,shipment=SHP-S origin="Osaka",destination="Paris" {now - 3_600_000}',
        f'alarm,crate=R-S,rule=warning_high,sensor=probe1,severity=warning,profile=cryo,shipment=SHP-S '
        f'state="active",change="active",started_ts={started}i,id="R-S/warning_high/probe1/{started}",late=false '
        f"{started}",
        f'alarm,crate=R-S,rule=warning_high,sensor=probe1,severity=warning,profile=cryo,shipment=SHP-S '
        f'state="acknowledged",change="acknowledged",started_ts={started}i,id="R-S/warning_high/probe1/{started}",'
        f'late=false,by="Ben" {started + 60_000}',
    ])  # fmt: skip
    card = page.locator('.crate[data-crate="R-S"]')
    expect(card.locator(".shipment")).to_have_text("shipment SHP-S", timeout=12000)
    expect(card.locator(".history-head")).to_contain_text("1 alarm on this shipment")
    expect(card.locator(".x-rule")).to_have_text("warning high · probe1")
    expect(card.locator(".x-who")).to_have_text("seen by Ben")


def test_configured_title_chart_window_and_one_point(
    browser: Browser, page: Page, board: RunningBoard, influxdb: InfluxDB, database: str
) -> None:
    """The sign-in page carries the configured title, the chart opens on chart_hours, and one reading is '1 point'."""
    login = browser.new_context().new_page()
    login.goto(f"{board.url}/login")
    expect(login.locator("h1")).to_have_text(TITLE)
    assert login.title() == f"Sign in · {TITLE}"
    login.context.close()
    write_influx(
        influxdb.url,
        database,
        [f"temperature,crate=R-CONF,sensor=probe1 value_c=-170.5,seq=1i {int(time.time() * 1000) - 600_000}"],
    )
    page.goto(f"{board.url}/crates/R-CONF")
    status = page.locator("#chart-status")
    expect(status).to_contain_text("1 point, profile cryo", timeout=5000)
    expect(page.locator("#window-picker button.selected")).to_have_count(0)  # 3 h is none of the offered windows
    page.locator("#window-picker button[data-hours='6']").click()
    expect(page.locator("#window-picker button.selected")).to_have_text("6 h")
    page.goto(f"{board.url}/crates/R-NONE")
    expect(page.locator("#chart-status")).to_have_text("No readings in the last 3 h.", timeout=5000)
