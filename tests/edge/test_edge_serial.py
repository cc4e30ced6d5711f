"""The serial probe board over a real pty: vanishing and returning, RATE, heartbeat, lid sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_helpers import InProcessAgent, Listen, Listener, PtyBoard, RunAgent, agent_config, wait_until
from pytest_mock import MockerFixture
from serial.tools.list_ports_common import ListPortInfo

from cli.services import Mosquitto
from coldchain.sentences import AckSentence, CommandSentence, LidSentence
from edge.probes.serial_board import SerialBoard

pytestmark = pytest.mark.integration


def _serial(port: str, more: str = "") -> str:
    return f'[[probes]]\ndriver = "serial"\n{port}\nsensors = ["probe1"]\n{more}\n'


def test_board_that_vanishes_is_found_again_under_another_path(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str
) -> None:
    """The USB board unplugged and back as another device (matched by glob): readings continue."""
    crate = f"{crate_prefix}-V"
    dev = tmp_path / "dev"
    dev.mkdir()
    first, second = PtyBoard(), PtyBoard()
    (dev / "ttyBOARD-1").symlink_to(first.device)
    listener = Listener(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    config = agent_config(tmp_path, crate, mosquitto, probes=_serial(f'port = "{dev}/ttyBOARD-*"'))
    run = InProcessAgent(config, with_probes=True)
    try:
        wait_until(lambda: run.agent.link.connected, 10, "connected")
        first.tick({"probe1": -170.0})
        wait_until(lambda: len(listener.telemetry()) == 1, 10, "first reading")
        first.close()
        (dev / "ttyBOARD-1").unlink()
        (dev / "ttyBOARD-2").symlink_to(second.device)
        wait_until(lambda: _opened(run), 10, "reopened the new device")
        second.tick({"probe1": -169.0})
        got = wait_until(lambda: len(listener.telemetry()) == 2 and listener.telemetry(), 10, "second reading")
        assert [m["seq"] for m in got] == [0, 1]
        assert got[1]["readings"][0]["value_c"] == -169.0
    finally:
        run.stop()
        listener.close()
        second.close()


def _opened(run: InProcessAgent) -> bool:
    board = run.agent.probes[0]
    assert isinstance(board, SerialBoard)
    return board.device is not None and board.device.endswith("ttyBOARD-2")


def test_board_found_by_usb_serial_number(
    tmp_path: Path,
    mosquitto: Mosquitto,
    crate_prefix: str,
    board: PtyBoard,
    mocker: MockerFixture,
    listen: Listen,
    run_agent: RunAgent,
) -> None:
    """usb_serial picks the port whose USB adapter reports that serial number (enumeration faked: no USB here)."""
    crate = f"{crate_prefix}-U"
    ports = []
    for device, number in (("/dev/ttyUSB7", "OTHER"), (board.device, "A10K3XYZ")):
        info = ListPortInfo(device, skip_link_detection=True)
        info.serial_number = number
        ports.append(info)
    mocker.patch("edge.probes.serial_board.list_ports.comports", return_value=ports)
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    config = agent_config(tmp_path, crate, mosquitto, probes=_serial('usb_serial = "A10K3XYZ"'))
    run = run_agent(config, with_probes=True)
    wait_until(lambda: run.agent.probes[0].device == board.device, 10, "port resolved")  # type: ignore[attr-defined]
    board.tick({"probe1": -171.0})
    got = wait_until(listener.telemetry, 10, "a reading")
    assert got[0]["readings"][0]["value_c"] == -171.0


def test_rate_command_is_sent_and_acknowledged(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, run_agent: RunAgent
) -> None:
    """With rate_ms the agent sends $CCCMD,RATE,<ms> and records the board's $CCACK."""
    crate = f"{crate_prefix}-R"
    config = agent_config(tmp_path, crate, mosquitto, probes=_serial(f'port = "{board.device}"', "rate_ms = 500"))
    run = run_agent(config, with_probes=True)
    sent = wait_until(lambda: board.read_available(0.1), 10, "a command")
    assert sent == CommandSentence("RATE", "500").encode()
    board.write(AckSentence("RATE", "500").encode())
    wait_until(lambda: run.agent.probes[0].rate_acked == 500, 5, "ack recorded")  # type: ignore[attr-defined]


def test_missing_heartbeat_and_its_return_are_events(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, run_agent: RunAgent
) -> None:
    """No CCHBT within heartbeat_timeout_s gives heartbeat_missing; the next one gives heartbeat_restored."""
    crate = f"{crate_prefix}-H"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    probe = _serial(f'port = "{board.device}"', "heartbeat_timeout_s = 0.3")
    run_agent(agent_config(tmp_path, crate, mosquitto, probes=probe), with_probes=True)
    wait_until(lambda: listener.on("/events"), 10, "heartbeat_missing")
    board.heartbeat(5)
    got = wait_until(lambda: len(listener.on("/events")) >= 2 and listener.on("/events"), 10, "restored")
    assert [e["event"] for e in got[:2]] == ["heartbeat_missing", "heartbeat_restored"]


def test_lid_sentence_from_the_board_is_an_event(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, run_agent: RunAgent
) -> None:
    """A lid switch wired to the probe board ($CCLID) is published like the Pi's own."""
    crate = f"{crate_prefix}-D"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    probe = _serial(f'port = "{board.device}"')
    run = run_agent(agent_config(tmp_path, crate, mosquitto, probes=probe), with_probes=True)
    wait_until(lambda: run.agent.probes[0].device is not None, 10, "port open")  # type: ignore[attr-defined]
    board.write(LidSentence("OPEN").encode())
    got = wait_until(lambda: listener.on("/events"), 10, "lid event")
    assert got[0]["event"] == "lid_open"
