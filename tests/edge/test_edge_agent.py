"""The edge agent end to end on a real pty and the real broker: ticks in, telemetry out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from edge_helpers import AgentProcess, Listen, Listener, PtyBoard, SpawnAgent, wait_until, write_config

from cli.services import Mosquitto

pytestmark = pytest.mark.integration


StartAgent = Callable[..., tuple[AgentProcess, Listener]]


@pytest.fixture
def start(tmp_path: Path, mosquitto: Mosquitto, board: PtyBoard, listen: Listen, spawn_agent: SpawnAgent) -> StartAgent:
    """Starts ``python -m edge`` for a crate on the pty board (``extra`` appends config tables) and a listener
    on the crate's topics; returns them once the agent is online with the board open (both stopped after the test)."""

    def run(crate: str, extra: str = "") -> tuple[AgentProcess, Listener]:
        listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/#"])
        agent = spawn_agent(write_config(tmp_path, crate, mosquitto, board.device, extra))
        wait_until(lambda: any(s["state"] == "online" for s in listener.on("/status")), 10, "online status")
        agent.wait_log("opened")
        return agent, listener

    return run


def test_publishes_one_message_per_tick(crate_prefix: str, board: PtyBoard, start: StartAgent) -> None:
    """Each burst of CCTMP sentences becomes one telemetry message with consecutive seq."""
    crate = f"{crate_prefix}-A"
    _, listener = start(crate)
    board.tick({"probe1": -162.31, "probe2": -170.5})
    board.tick({"probe1": -162.0, "probe2": -170.25})
    board.tick({"probe1": -161.5, "probe2": -170.0})
    got = wait_until(lambda: len(listener.telemetry()) >= 3 and listener.telemetry(), 10, "3 messages")
    assert [m["seq"] for m in got] == [0, 1, 2]
    assert got[0]["crate"] == crate
    assert got[0]["readings"] == [
        {"sensor": "probe1", "value_c": -162.31},
        {"sensor": "probe2", "value_c": -170.5},
    ]
    assert got[2]["readings"][0]["value_c"] == -161.5
    assert got[0]["ts"] <= got[1]["ts"] <= got[2]["ts"]


def test_fault_status_is_sent_as_null_with_fault(crate_prefix: str, board: PtyBoard, start: StartAgent) -> None:
    """A probe reporting OPEN is published as value_c null with fault OPEN."""
    crate = f"{crate_prefix}-F"
    _, listener = start(crate)
    board.tick({"probe1": -150.0, "probe2": "OPEN"})
    got = wait_until(listener.telemetry, 10, "a message")
    assert got[0]["readings"] == [
        {"sensor": "probe1", "value_c": -150.0},
        {"sensor": "probe2", "value_c": None, "fault": "OPEN"},
    ]


def test_bad_lines_are_counted_and_skipped(crate_prefix: str, board: PtyBoard, start: StartAgent) -> None:
    """Garbage bytes and a checksum mismatch are logged and skipped; the next good tick still arrives."""
    crate = f"{crate_prefix}-B"
    agent, listener = start(crate)
    board.write(b"\x00\xff\xfe garbage\r\n$CCTMP,probe1,-160.00,OK*00\r\n" + b"x" * 400 + b"\r\n")
    board.tick({"probe1": -160.0, "probe2": -161.0})
    got = wait_until(listener.telemetry, 10, "a message")
    assert got[0]["seq"] == 0
    assert got[0]["readings"][0] == {"sensor": "probe1", "value_c": -160.0}
    agent.wait_log("bad line #3")
    assert "checksum mismatch" in agent.text()
    assert agent.process.poll() is None


def test_incomplete_tick_is_sent_after_timeout(crate_prefix: str, board: PtyBoard, start: StartAgent) -> None:
    """When one configured sensor stays silent, the others are still sent once the tick times out."""
    crate = f"{crate_prefix}-T"
    _, listener = start(crate)
    board.tick({"probe1": -165.0})
    got = wait_until(listener.telemetry, 5, "a message")
    assert got[0]["readings"] == [{"sensor": "probe1", "value_c": -165.0}]


def test_board_clock_stamps_readings(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, board: PtyBoard, listen: Listen, spawn_agent: SpawnAgent
) -> None:
    """With time_source = "board" the CCTIM before a burst becomes the message's ts."""
    crate = f"{crate_prefix}-C"
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/#"])
    config = write_config(tmp_path, crate, mosquitto, board.device, probe='time_source = "board"')
    agent = spawn_agent(config)
    agent.wait_log("opened")
    board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=1_795_000_000_123)
    board.tick({"probe1": -170.0, "probe2": -171.0}, board_ms=1_795_000_001_123)
    got = wait_until(lambda: len(listener.telemetry()) >= 2 and listener.telemetry(), 10, "2 messages")
    assert [m["ts"] for m in got] == [1_795_000_000_123, 1_795_000_001_123]


def test_status_online_then_last_will_offline(mosquitto: Mosquitto, crate_prefix: str, start: StartAgent) -> None:
    """The retained status says online on connect, and the broker sends the offline will when the agent dies."""
    crate = f"{crate_prefix}-S"
    agent, listener = start(crate)
    agent.kill()
    wait_until(lambda: any(s["state"] == "offline" for s in listener.on("/status")), 10, "offline will")
    offline = [s for s in listener.on("/status") if s["state"] == "offline"][-1]
    assert offline["crate"] == crate
    assert isinstance(offline["ts"], int)
    late = Listener(mosquitto, [f"coldchain/v1/crates/{crate}/status"])
    wait_until(lambda: late.messages, 5, "retained status")
    assert late.messages[0][1]["state"] == "offline"
    assert late.messages[0][2] is True
    late.close()


def test_telemetry_is_signed_with_the_provisioned_key(
    tmp_path: Path, crate_prefix: str, board: PtyBoard, start: StartAgent
) -> None:
    """With [signing] key_file, every telemetry message carries a sig that verifies under the crate's key."""
    from coldchain.signing import verify

    key = bytes(range(32))
    (tmp_path / "signing.key").write_text(key.hex())
    crate = f"{crate_prefix}-S"
    _, listener = start(crate, '[signing]\nkey_file = "signing.key"\n')
    board.tick({"probe1": -181.25, "probe2": -180.5})
    got = wait_until(listener.telemetry, 10, "a message")
    assert verify(got[0], key)
    assert not verify({**got[0], "seq": got[0]["seq"] + 1}, key)
