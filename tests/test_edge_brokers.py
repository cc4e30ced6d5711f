"""The agent's broker list and protocol (validated, errors naming the problem); a refused ack subscription."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
from cluster_helpers import Mqtt311
from edge_helpers import InProcessAgent, agent_config, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.cluster_services import NatsCluster
from coldchain.errors import ConfigError
from coldchain.topics import storage_ack_topic
from coldchain.wire import StorageAck, encode
from edge.config import parse_config

MINIMAL = {
    "crate": {"id": "C-1", "profile": "cryo"},
    "probes": [{"driver": "serial", "port": "loop://", "sensors": ["probe1"]}],
}


def _with_mqtt(mqtt: dict[str, object]) -> dict[str, object]:
    return {**MINIMAL, "mqtt": mqtt}


def test_brokers_list_is_parsed_in_order() -> None:
    """Each "host:port" becomes an address, in the order given, IPv6 in brackets included."""
    config = parse_config(_with_mqtt({"brokers": ["n1.example.org:8883", "[::1]:1884"]}), "a.toml", Path())
    assert config.mqtt.addresses == (("n1.example.org", 8883), ("::1", 1884))


def test_without_brokers_host_and_port_are_the_only_address() -> None:
    """No list: host and port, as before, over MQTT 5."""
    config = parse_config(_with_mqtt({"host": "10.0.0.1", "port": 1884}), "a.toml", Path())
    assert config.mqtt.addresses == (("10.0.0.1", 1884),)
    assert config.mqtt.protocol == "5"


def test_protocol_311_is_accepted() -> None:
    """protocol = "3.1.1" selects MQTT 3.1.1 (nats-server speaks no MQTT 5)."""
    config = parse_config(_with_mqtt({"brokers": ["a:1"], "protocol": "3.1.1"}), "a.toml", Path())
    assert config.mqtt.protocol == "3.1.1"


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"brokers": []}, "mqtt.brokers: must name at least one broker"),
        ({"brokers": ["n1.example.org"]}, "mqtt.brokers: 'n1.example.org' is not host:port"),
        ({"brokers": ["n1:0"]}, "mqtt.brokers: 'n1:0': the port must be a number 1-65535"),
        ({"brokers": ["n1:http"]}, "the port must be a number"),
        ({"brokers": [":1883"]}, "is not host:port"),
        ({"brokers": ["a:1", "a:1"]}, "a broker is listed twice"),
        ({"brokers": ["a:1"], "host": "b"}, "set either brokers or host and port, not both"),
        ({"brokers": "a:1"}, "mqtt.brokers: must be a list of strings"),
        ({"brokers": ["a:1"], "protocol": "3"}, "mqtt.protocol: '3' is not one of"),
    ],
)
def test_bad_brokers_name_the_problem(mqtt: dict[str, object], message: str) -> None:
    """A bad broker list or protocol is refused with an error naming the key and the problem."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_config(_with_mqtt(mqtt), "a.toml", Path())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=20))
def test_any_brokers_value_gives_a_config_or_a_config_error(entries: list[object]) -> None:
    """The broker list decoder is total: any value -> addresses or ConfigError, never another exception."""
    try:
        config = parse_config(_with_mqtt({"brokers": entries}), "a.toml", Path())
    except ConfigError:
        return
    assert all(1 <= port <= 65535 and host for host, port in config.mqtt.addresses)


def _auth(crate: str, ack_allowed: bool) -> str:
    """The crate may publish its topics, subscribe to its acks only when ``ack_allowed``; "gw" may do anything."""
    subscribe = ["$MQTT.sub.>"] + ([f"coldchain.v1.crates.{crate}.ack"] if ack_allowed else [])
    listed = ", ".join(f'"{s}"' for s in subscribe)
    return (
        "authorization { users: [\n"
        f'  {{user: "{crate}", password: "pw", permissions: {{publish: ["coldchain.v1.crates.{crate}.>"], '
        f"subscribe: [{listed}]}}}}\n"
        # every login with rights of its own: nats-server 2.9.10 crashes reloading its authorization while it
        # holds a retained message of a login without them (nil pointer in mqttCheckPubRetainedPerms)
        '  {user: "gw", password: "pw", permissions: {publish: [">"], subscribe: [">"]}}\n] }\n'
    )


@pytest.mark.integration
@pytest.mark.cluster
def test_refused_ack_subscription_is_tried_again(tmp_path: Path) -> None:
    """A SUBACK refusing the storage-ack subscription is retried on the same connection: once the broker allows it,
    the ack arrives and the spool is pruned (without the retry the crate stays deaf to acks until a reconnect)."""
    crate = "C-SUB"
    cluster = NatsCluster(tmp_path / "nats", auth=_auth(crate, ack_allowed=False)).start()
    try:
        password = tmp_path / "pw"
        password.write_text("pw\n")
        password.chmod(0o600)
        mqtt = f'username = "{crate}"\npassword_file = "{password}"\nprotocol = "3.1.1"\nrefused_retry_s = 0.2\n'
        mqtt += "brokers = [" + ", ".join(f'"{b}"' for b in cluster.mqtt_brokers) + "]"
        stand_in = SimpleNamespace(host="", port=0)  # brokers replace host and port
        config = agent_config(tmp_path / "agent", crate, stand_in, mqtt_extra=mqtt)  # type: ignore[arg-type]
        config.write_text(config.read_text().replace('host = ""\nport = 0\n', ""))
        _refused_then_allowed(cluster, crate, InProcessAgent(config))
    finally:
        cluster.stop()


def _refused_then_allowed(cluster: NatsCluster, crate: str, run: InProcessAgent) -> None:
    gateway = Mqtt311(cluster.mqtt_brokers[0], "gw", "gw", "pw")
    try:
        wait_until(lambda: run.agent.forwarder.connected, 20, "connected")
        run.sample(1_795_000_000_000, probe1=-170.0)
        wait_until(lambda: run.agent.forwarder.published == 1, 10, "the reading published")
        assert gateway.connected() == 0
        for node in cluster.nodes:  # allow the subscription, as 'coldchain cluster-auth' + reload would
            node.auth = _auth(crate, ack_allowed=True)
            node.write_conf()
            assert node.process is not None
            node.process.send_signal(signal.SIGHUP)
        gateway.publish(storage_ack_topic(crate), encode(StorageAck(crate, 0)), retain=True)
        wait_until(lambda: len(run.agent.spool) == 0, 15, "the spool pruned by the ack")
    finally:
        gateway.close()
        run.stop()
