"""Bench helper: delete each retained alarm a second after it appears (peer-bench runs only).

The peer bench matches alarms to the messages that caused them by (crate, seq), and its alarm crates
(``A-…``, seq 1) are named by message index, so the same names come back in every scenario. The
gateway's alarms are retained (the contract), so a scenario's alarm subscriber would first receive
the previous scenario's alarms for those names, at subscribe time, and count them as answers
(negative latencies). Clearing each retained alarm shortly after it is published leaves every
scenario with a clean slate; the gateway's behaviour is unchanged.

    python bench/alarm_janitor.py --port 18831
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt


def main() -> int:
    """Run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18831)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    due: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload:
            with lock:
                due.setdefault(message.topic, time.monotonic() + args.delay)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-alarm-janitor")
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("coldchain/v1/alarms/#", qos=1)
    client.connect(args.host, args.port)
    client.loop_start()
    while not stop.wait(0.2):
        now = time.monotonic()
        with lock:
            ready = [topic for topic, at in due.items() if at <= now]
            for topic in ready:
                del due[topic]
        for topic in ready:
            client.publish(topic, b"", qos=1, retain=True)
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
