"""``coldchain ack`` against a real mosquitto: the payload staff publish, and clear errors when it cannot go."""

from __future__ import annotations

import queue
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cli.main import main
from cli.services import Mosquitto, free_port
from coldchain.topics import acks_from_topic
from coldchain.wire import decode_staff_ack

REPO = Path(__file__).resolve().parent.parent


def _ack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "ack", *args, "--timeout", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def _ack_here(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``coldchain ack`` in this process: (exit status, stderr)."""
    try:
        status = main(["ack", *args, "--timeout", "3"])
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


def _subscriber(broker: Mosquitto, topic: str) -> tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = queue.Queue[int]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: received.put(m)
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.put(mid)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.get(timeout=5)
    return client, received


@pytest.mark.integration
def test_ack_publishes_the_documented_payload(mosquitto: Mosquitto, crate_prefix: str) -> None:
    """The ack arrives once on coldchain/v1/acks/{crate}/{rule}/{sensor}, QoS 1, not retained, decodable."""
    crate = f"{crate_prefix}-C1"
    client, received = _subscriber(mosquitto, f"coldchain/v1/acks/{crate}/#")
    try:
        done = _ack(crate, "critical_high", "probe1", "--by", "Ana Ruiz", "--note", "re-iced at the hub",
                    "--host", mosquitto.host, "--port", str(mosquitto.port))  # fmt: skip
        assert done.returncode == 0, done.stderr
        message = received.get(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()
    assert message.topic == f"coldchain/v1/acks/{crate}/critical_high/probe1"
    assert (message.qos, message.retain) == (1, False)
    ack = decode_staff_ack(message.payload, acks_from_topic(message.topic))
    assert (ack.crate, ack.rule, ack.sensor, ack.by, ack.note) == (
        crate, "critical_high", "probe1", "Ana Ruiz", "re-iced at the hub",
    )  # fmt: skip
    assert received.empty()


@pytest.mark.integration
def test_ack_sensor_defaults_to_crate_and_config_names_the_broker(
    mosquitto: Mosquitto, crate_prefix: str, tmp_path: Path
) -> None:
    """Without SENSOR the ack is about the whole crate; --config's [mqtt] table says where the broker is."""
    crate = f"{crate_prefix}-C2"
    config = tmp_path / "staff.toml"
    config.write_text(f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    client, received = _subscriber(mosquitto, f"coldchain/v1/acks/{crate}/#")
    try:
        done = _ack(crate, "offline", "--by", "Ben", "--note", "courier called", "--config", str(config))
        assert done.returncode == 0, done.stderr
        message = received.get(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()
    assert message.topic == f"coldchain/v1/acks/{crate}/offline/crate"


def test_unreachable_broker_names_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, ack exits 1 naming host:port and what to check."""
    port = free_port()
    status, err = _ack_here(capsys, "C-1", "critical_high", "--by", "Ana", "--note", "x", "--port", str(port))
    assert status == 1
    assert f"cannot reach the broker at 127.0.0.1:{port}" in err
    assert "check that the broker runs and listens on" in err


@pytest.mark.integration
def test_broker_refusing_the_ack_says_to_check_the_acl(
    make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broker whose ACL forbids writing acks refuses the PUBACK; ack exits 1 and says to check the ACL."""
    acl = tmp_path / "acl"
    acl.write_text("topic read coldchain/v1/alarms/#\n")
    broker = make_mosquitto(extra_conf=f"acl_file {acl}\n")
    args = ("C-1", "critical_high", "--by", "Ana", "--note", "x", "--host", broker.host, "--port", str(broker.port))
    status, err = _ack_here(capsys, *args)
    assert status == 1
    assert "refused to take the acknowledgement" in err
    assert "ACL lets this login write coldchain/v1/acks/#" in err


def test_bad_arguments_are_refused_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad crate id, an empty name or a bad config value exits 2 with the problem named."""
    assert _ack_here(capsys, "C/1", "r", "--by", "Ana", "--note", "x")[1].endswith(
        "crate 'C/1' must be 1-64 of [A-Za-z0-9_.-], starting with a letter or digit\n"
    )
    status, err = _ack_here(capsys, "C-1", "r", "--by", " ", "--note", "x")
    assert (status, "--by must name you" in err) == (2, True)
    config = tmp_path / "bad.toml"
    config.write_text('[mqtt]\nhost = "127.0.0.1"\nport = "1883"\n')
    status, err = _ack_here(capsys, "C-1", "r", "--by", "Ana", "--note", "x", "--config", str(config))
    assert status == 2
    assert "bad.toml: mqtt.port: must be an integer" in err
