"""The agent's broker list (``[mqtt] brokers``) and protocol: validated with errors naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.errors import ConfigError
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
