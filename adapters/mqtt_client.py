"""The one place a paho client is made from broker settings: protocol, TLS, login and reconnect back-off.

Every program's link (the agent's, the gateway's, the board's, the people's commands') asks here, so a
setting of ``[mqtt]`` means the same to each. A program that needs its own client class (the gateway's
fast reader, the board's watched loop) passes it; the class takes paho's keyword arguments.
"""

from __future__ import annotations

import ssl
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.secrets import read_secret
from coldchain.settings.broker import BrokerSettings

__all__ = ["broker_client"]

C = TypeVar("C", bound=mqtt.Client)


def broker_client(settings: BrokerSettings, client_id: str, client_class: type[C], **paho: Any) -> C:
    """A new, unconnected ``client_class`` set up for ``settings``; ``paho`` holds further constructor arguments.

    MQTT 3.1.1 (``protocol = "3.1.1"``) gets a clean session, as MQTT 5's clean start does. The password is
    read now (``SecretError`` when its file gives none); TLS files are loaded now (OSError, ssl.SSLError).
    """
    if settings.protocol == "3.1.1":
        client = client_class(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            **paho,
        )
    else:
        client = client_class(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, **paho
        )
    if settings.uses_tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if settings.username is not None:
        password = read_secret(settings.password_file) if settings.password_file is not None else None
        client.username_pw_set(settings.username, password)
    # used by paho's own loop (loop_start); the agent and the gateway run theirs with the same bounds
    client.reconnect_delay_set(min_delay=settings.reconnect_min_s, max_delay=settings.reconnect_max_s)  # type: ignore[arg-type]
    return client
