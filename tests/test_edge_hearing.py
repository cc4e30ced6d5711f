"""A crate connected to the broker but heard by no gateway alarms locally, and says so, until acks flow again."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_helpers import InProcessAgent, Listener, agent_config, wait_until
from gateway_helpers import GatewayProcess, gateway_config
from gpiozero.pins.mock import MockFactory
from sim_helpers import running_sim

from cli.services import InfluxDB, Mosquitto
from edge.hearing import Hearing

ALARM = '[alarm]\nbuzzer_pin = "GPIO17"\nled_pin = "GPIO27"\nwhen = "offline"'


def _events(listener: Listener, name: str) -> list[dict[str, object]]:
    return [e for e in listener.on("/events") if e["event"] == name]


@pytest.mark.integration
def test_silent_gateway_sounds_the_local_alarm_until_its_acks_flow(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str, crate_prefix: str, factory: MockFactory
) -> None:
    """Broker up, no gateway: a crate in excursion sounds its buzzer and publishes gateway_silent; a gateway's acks
    quiet it with gateway_heard."""
    crate = f"{crate_prefix}-H"
    listener = Listener(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    buzzer = factory.pin(17)
    sim_args = ("--sensor", "probe1", "--start", "-140", "--period", "0.5", "--heartbeat", "1")
    with running_sim(*sim_args, "--link", str(tmp_path / "tty")) as sim:
        probes = f'[[probes]]\ndriver = "serial"\nport = "{sim.device}"\nsensors = ["probe1"]\n'
        spool = "ack_timeout_s = 1.0\ngateway_silent_s = 2.0"
        config = agent_config(tmp_path / "agent", crate, mosquitto, spool=spool, extra=ALARM, probes=probes)
        run = InProcessAgent(config, with_probes=True, pin_factory=factory)
        gateway = None
        try:
            wait_until(lambda: _events(listener, "excursion"), 10, "the excursion event on the broker")
            assert run.agent.link.connected
            assert not buzzer.state  # connected, and the gateway has not had time to answer yet
            silent = wait_until(lambda: _events(listener, "gateway_silent"), 10, "gateway_silent on the broker")
            assert silent[0]["crate"] == crate
            assert float(silent[0]["silent_s"]) >= 2.0  # type: ignore[arg-type]
            wait_until(lambda: buzzer.state, 5, "the buzzer sounding")
            assert run.agent.link.connected  # the broker took everything all along
            gateway = GatewayProcess(gateway_config(tmp_path, mosquitto, influxdb, database), tmp_path / "gw.log")
            heard = wait_until(lambda: _events(listener, "gateway_heard"), 15, "gateway_heard on the broker")
            # -1 when the gateway meets the crate first and awaits its backlog from held_from: still an answer
            assert int(heard[0]["stored_through"]) >= -1  # type: ignore[call-overload]
            wait_until(lambda: not buzzer.state, 5, "the buzzer quiet")
            assert run.agent.checks.active  # still in excursion: quiet because the gateway hears it now
        finally:
            run.stop()
            listener.close()
            if gateway is not None:
                gateway.stop()


def test_a_replayed_ack_is_no_news_from_the_gateway() -> None:
    """The retained ack the broker replays on every subscription neither ends a silence nor restarts the wait."""
    hearing = Hearing(silent_after_ms=1000)
    assert hearing.check(0, connected=True, awaiting=lambda: True) is None
    assert not hearing.acked(-1)  # the first ack ever heard: news, but nothing was silent
    assert hearing.check(100, connected=True, awaiting=lambda: True) is None
    assert hearing.check(1200, connected=True, awaiting=lambda: True) == 1100
    assert hearing.silent
    assert not hearing.acked(-1)  # the same value again: a replay
    assert hearing.silent
    assert hearing.acked(7)
    assert not hearing.silent
