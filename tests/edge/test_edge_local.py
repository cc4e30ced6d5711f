"""What the crate does on its own: lid events, local excursion alarm while offline, stuck probes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from edge_helpers import Listen, Listener, RunAgent, agent_config, wait_until
from gpiozero.pins.mock import MockFactory

from cli.services import Mosquitto

pytestmark = pytest.mark.integration

TS = 1_795_000_000_000
ALARM = '[alarm]\nbuzzer_pin = "GPIO17"\nled_pin = "GPIO27"\nlid_pin = "GPIO5"'


def _events(listener: Listener, name: str) -> list[dict[str, object]]:
    return [e for e in listener.on("/events") if e["event"] == name]


def test_lid_switch_publishes_open_and_closed(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, factory: MockFactory, listen: Listen, run_agent: RunAgent
) -> None:
    """Opening and closing the lid (reed switch on a gpiozero Button) publishes lid_open and lid_closed."""
    crate = f"{crate_prefix}-L"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run_agent(agent_config(tmp_path, crate, mosquitto, extra=ALARM), pin_factory=factory)
    lid = factory.pin(5)
    lid.drive_low()  # switch closed: lid shut
    time.sleep(0.1)  # past the 50 ms debounce
    lid.drive_high()  # switch open: lid open
    got = wait_until(lambda: len(listener.on("/events")) >= 2 and listener.on("/events"), 10, "2 lid events")
    assert [e["event"] for e in got] == ["lid_closed", "lid_open"]
    assert got[0]["crate"] == crate
    assert isinstance(got[1]["ts"], int)


def test_offline_excursion_sounds_alarm_and_queues_events(
    tmp_path: Path,
    make_mosquitto: Callable[..., Mosquitto],
    crate_prefix: str,
    factory: MockFactory,
    listen: Listen,
    run_agent: RunAgent,
) -> None:
    """With no broker, a cryo crate warming past -150 °C sounds buzzer and LED; start and end arrive later."""
    crate = f"{crate_prefix}-E"
    broker = make_mosquitto()
    listener = listen(broker, [f"coldchain/v1/crates/{crate}/events"], client_id=f"{crate}-listener")
    broker.stop()
    run = run_agent(agent_config(tmp_path, crate, broker, extra=ALARM), pin_factory=factory)
    buzzer, led = factory.pin(17), factory.pin(27)
    run.sample(TS, probe1=-170.0)
    run.sample(TS + 1000, probe1=-140.0)
    wait_until(lambda: buzzer.state and led.state, 5, "buzzer and LED on")
    run.sample(TS + 2000, probe1=-135.0)
    run.sample(TS + 3000, probe1=-165.0)
    wait_until(lambda: not buzzer.state and not led.state, 5, "buzzer and LED off")
    broker.start()
    got = wait_until(lambda: len(_events(listener, "excursion")) >= 4 and _events(listener, "excursion"), 10, "4")
    by = {(e["rule"], e["state"]): e for e in got}
    critical = by[("critical_high", "cleared")]
    assert (critical["started_ts"], critical["ended_ts"], critical["peak_c"]) == (TS + 1000, TS + 3000, -135.0)
    assert by[("critical_high", "active")]["value_c"] == -140.0
    assert by[("warning_high", "cleared")]["severity"] == "warning"


def test_online_excursion_leaves_the_buzzer_quiet(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, factory: MockFactory, listen: Listen, run_agent: RunAgent
) -> None:
    """While connected the gateway raises the alarm: the local buzzer stays off, the event is still sent."""
    crate = f"{crate_prefix}-Q"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, extra=ALARM), pin_factory=factory)
    wait_until(lambda: run.agent.link.connected, 10, "connected")
    run.sample(TS, probe1=-140.0)
    wait_until(lambda: _events(listener, "excursion"), 10, "excursion event")
    assert not factory.pin(17).state


def test_stuck_value_is_reported(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """A value repeated stuck_samples times gives a stuck_value event; a change clears it."""
    crate = f"{crate_prefix}-S"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto, extra="[agent]\nstuck_samples = 3"))
    for i in range(3):
        run.sample(TS + i * 1000, probe1=-171.23)
    run.sample(TS + 3000, probe1=-171.25)
    got = wait_until(lambda: len(listener.on("/events")) >= 2 and listener.on("/events"), 10, "2 events")
    assert [(e["event"], e["sensor"], e["value_c"]) for e in got] == [
        ("stuck_value", "probe1", -171.23),
        ("stuck_value_cleared", "probe1", -171.25),
    ]
