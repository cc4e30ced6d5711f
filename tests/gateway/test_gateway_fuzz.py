"""Fuzz (issue 17): a seeded stream of hostile messages, interleaved with valid telemetry, against the real gateway,
mosquitto and InfluxDB. The gateway stays up, refuses each hostile message exactly once with a documented reason,
stores every valid reading exactly once and nothing else, and acknowledges every crate up to its last seq.

The stream runs once per pass (module fixture ``run``: unsigned, and with signatures required); each test checks
one outcome of it. fuzz_corpus.py builds the stream; fuzz_contract.py says, from the README and docs/gateway.md,
which messages must be refused and which seqs a refused one still settles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fuzz_corpus as fc
import paho.mqtt.client as mqtt
import pytest
from fuzz_contract import Message
from gateway_helpers import ROOT, Client, GatewayProcess, gateway_config
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cli.services import InfluxDB, Mosquitto
from cli.verify_archive import main as verify_archive

pytestmark = pytest.mark.integration

# fixed, so every run of make test sends the same stream; COLDCHAIN_FUZZ_SEED explores others by hand
SEED = int(os.environ.get("COLDCHAIN_FUZZ_SEED", "17"))
HOSTILE = 3000  # hostile messages
VALID_SEQS = 100  # per valid crate, two readings each
SETTLE_S = 90.0  # the most the gateway may take for the whole stream (a few seconds normally)
QUIET_S = 10.0  # nothing published for this long: the gateway has done all it will


@dataclass
class Run:
    """What one pass of the stream left behind."""

    stream: list[Message]
    rejects: list[dict[str, Any]]  # bodies received on coldchain/v1/rejected
    acks: dict[str, list[int]]  # crate -> stored_through values received, in order
    retained_acks: dict[str, int]  # crate -> stored_through of its retained ack, as a crate connecting now reads it
    alarms: list[tuple[str, dict[str, Any]]]  # alarms received: topic, body
    influx_rejects: list[dict[str, Any]]
    alarm_points: list[dict[str, Any]]
    temperatures: list[dict[str, Any]]
    measurements: set[str]
    gaps: list[dict[str, Any]]  # gap points (there should be none)
    archive: Path  # the evidence archive ([security] archive)
    keys_dir: Path | None  # signing keys, in the signed pass
    alive_after: bool  # the gateway still ran when the stream was settled
    exit_code: int
    log: str


def _documented_reasons() -> set[str]:
    """The rejection reasons docs/gateway.md lists (its 'Rejection reasons' paragraph)."""
    text = (ROOT / "docs" / "gateway.md").read_text()
    paragraph = text[text.index("Rejection reasons") : text.index("The publisher's login")]
    return set(re.findall(r"`([a-z_]+)`", paragraph))


def _properties() -> Properties:
    """MQTT 5 properties a publisher may attach; the broker forwards them, the gateway's reader must skip them."""
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [("a,b=c d", "x" * 10_000), ("ünï", "\u2028\"'\\")]
    properties.ContentType = "application/json; charset=utf-16"
    properties.CorrelationData = bytes(range(256))
    properties.ResponseTopic = "coldchain/v1/crates/FZ-V1/ack"
    properties.PayloadFormatIndicator = 0
    return properties


def _publish_all(broker: Mosquitto, stream: list[Message]) -> None:
    """Publish the stream in order from one client (the broker keeps the order of its QoS 1 messages), pipelined."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzz-publisher", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    dropped = threading.Event()
    client.on_disconnect = lambda *a: dropped.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    extra = _properties()
    try:
        infos = [
            (m, client.publish(m.topic, m.payload, qos=m.qos, properties=extra if m.properties else None))
            for m in stream
        ]
        for message, info in infos:
            info.wait_for_publish(30)
            taken = info.is_published()
            assert taken, f"the broker did not take {message.describe()} (disconnected: {dropped.is_set()})"
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_settled(listener: Client, gateway: GatewayProcess, last: dict[str, int], hostile: int) -> None:
    """Until every crate's ack reached its last seq and every reject came, or nothing at all came for QUIET_S (the
    tests then say what is missing), or the gateway died, or SETTLE_S passed."""
    deadline = time.monotonic() + SETTLE_S
    count, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline and gateway.process.poll() is None:
        if len(listener.messages) != count:
            count, quiet_since = len(listener.messages), time.monotonic()
        acks = _acks(listener)
        acked = all(acks.get(crate, [0])[-1] >= seq for crate, seq in last.items())
        if acked and len(listener.received("coldchain/v1/rejected")) >= hostile:
            return
        if time.monotonic() - quiet_since > QUIET_S:
            return
        time.sleep(0.1)


def _acks(listener: Client) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, payload, _ in list(listener.messages):
        parts = topic.split("/")
        if len(parts) == 5 and parts[2] == "crates" and parts[4] == "ack":
            out.setdefault(parts[3], []).append(json.loads(payload)["stored_through"])
    return out


def _retained_acks(broker: Mosquitto, crates: int) -> dict[str, int]:
    """The retained storage acks a client subscribing now receives (waits briefly for ``crates`` of them)."""
    client = Client(broker, ["coldchain/v1/crates/+/ack"])
    deadline = time.monotonic() + 5.0
    while len(client.messages) < crates and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # one more than expected would come now
    client.close()
    return {t.split("/")[3]: json.loads(p)["stored_through"] for t, p, retain in client.messages if retain}


def _last_seqs(stream: list[Message]) -> dict[str, int]:
    last: dict[str, int] = {}
    for message in stream:
        if message.crate:
            last[message.crate] = max(last.get(message.crate, 0), message.seq)
    return last


def _keys(directory: Path) -> dict[str, bytes]:
    """A signing key per valid and hostile crate, as ``coldchain provision crate`` writes them (hex files)."""
    directory.mkdir()
    keys = {
        crate: hashlib.sha256(crate.encode()).digest()
        for crate in (*fc.VALID_CRATES, *fc.HOSTILE_CRATES, fc.ALARM_CRATE)
    }
    for crate, key in keys.items():
        (directory / f"{crate}.key").write_text(key.hex())
    return keys


@pytest.fixture(scope="module", params=["unsigned", "signed"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Iterator[Run]:
    """The stream, once per mode, against a gateway on a broker of its own (thousands of rejects, retained acks).

    ``signed``: the gateway requires signatures ([security] keys_dir, require_signatures), the crates sign.
    """
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    keys = _keys(tmp / "keys") if request.param == "signed" else None
    extra = f"[security]\narchive = {json.dumps(str(tmp / 'archive.jsonl'))}\n"
    if keys is not None:
        extra += f"keys_dir = {json.dumps(str(tmp / 'keys'))}\nrequire_signatures = true\n"
    broker = Mosquitto(tmp / "mosquitto").start()
    database = f"fuzz{SEED}_{request.param}_{int(time.time())}"
    listener = Client(broker, ["coldchain/v1/rejected", "coldchain/v1/crates/+/ack", "coldchain/v1/alarms/#"])
    config = gateway_config(tmp, broker, influxdb, database, extra, client_id=f"gw-fuzz-{request.param}")
    gateway = GatewayProcess(config, tmp / "gw.log")
    try:
        hostile = fc.hostile_stream(SEED, HOSTILE, int(time.time() * 1000), keys)
        stream = fc.interleave(SEED, hostile, fc.valid_stream(VALID_SEQS, keys))
        _publish_all(broker, stream)
        last = _last_seqs(stream)
        _wait_settled(listener, gateway, last, HOSTILE)
        time.sleep(1.0)  # a duplicate reject or a stray point would come now
        alive = gateway.process.poll() is None
        exit_code = gateway.stop()
        retained = _retained_acks(broker, len(last))
        yield Run(
            stream=stream,
            rejects=listener.received("coldchain/v1/rejected"),
            acks=_acks(listener),
            retained_acks=retained,
            alarms=[(t, json.loads(p)) for t, p, _ in listener.messages if t.startswith("coldchain/v1/alarms/")],
            alarm_points=influxdb.rows("SELECT * FROM alarm", database),
            influx_rejects=influxdb.rows("SELECT * FROM rejected", database),
            temperatures=influxdb.rows("SELECT * FROM temperature", database),
            measurements={str(r["name"]) for r in influxdb.rows("SHOW MEASUREMENTS", database)},
            gaps=influxdb.rows("SELECT * FROM gap", database),
            archive=tmp / "archive.jsonl",
            keys_dir=tmp / "keys" if keys is not None else None,
            alive_after=alive,
            exit_code=exit_code,
            log=gateway.log.read_text(errors="replace"),
        )
    finally:
        gateway.stop(kill=True)
        listener.close()
        broker.stop()


def _listing(items: list[str], limit: int = 40) -> str:
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return "\n  " + "\n  ".join(items[:limit]) + more


def _stored(text: str | None) -> str | None:
    """A string field as read back from InfluxDB: a line break is stored as the two characters \\n (docs/gateway.md)."""
    return None if text is None else text.replace("\n", "\\n")


def _reject_diff(stream: list[Message], received: list[tuple[str, str]], influx: bool = False) -> str:
    """The hostile messages without a reject, and the rejects no hostile message explains ('' when none)."""
    by_key: dict[tuple[str, str], list[Message]] = {}
    for message in stream:
        if message.hostile:
            topic, excerpt = message.reject_key()
            key = (topic, _stored(excerpt) or "") if influx else (topic, excerpt)
            by_key.setdefault(key, []).append(message)
    expected = Counter({key: len(messages) for key, messages in by_key.items()})
    got = Counter(received)
    missing = [m.describe() for key, n in (expected - got).items() for m in by_key[key][-n:]]
    extra = [f"{n} x topic {t[:80]!r}, excerpt {e[:100]!r}" for (t, e), n in (got - expected).items()]
    out = ""
    if missing:
        out += f"\n{len(missing)} hostile messages got no reject:{_listing(missing)}"
    if extra:
        out += f"\n{sum((got - expected).values())} rejects too many (a second one, or for a valid message):"
        out += _listing(extra)
    return out


def test_gateway_survives_the_hostile_stream(run: Run) -> None:
    """The gateway is still running after the stream, kept its broker connection, and exits 0 on SIGTERM."""
    stopping = [line for line in run.log.splitlines() if "stopping the gateway" in line]
    lost = [line for line in run.log.splitlines() if "lost broker" in line]
    assert run.alive_after, f"the gateway exited during the stream; log tail:\n{run.log[-3000:]}"
    assert not stopping, f"the gateway decided to stop: {stopping[:3]}"
    assert not lost, f"the broker dropped the gateway {len(lost)} times (a protocol error?): {lost[:3]}"
    assert run.exit_code == 0, f"exit code {run.exit_code}; log tail:\n{run.log[-3000:]}"


def test_every_hostile_message_gets_exactly_one_reject_on_mqtt(run: Run) -> None:
    """coldchain/v1/rejected carries one reject per hostile message (matched by topic and excerpt), none for others."""
    received = [(r.get("topic", ""), r.get("excerpt", "")) for r in run.rejects]
    diff = _reject_diff(run.stream, received)
    assert not diff, diff


def test_every_hostile_message_gets_exactly_one_reject_in_influxdb(run: Run) -> None:
    """Measurement rejected holds one point per hostile message (matched by topic and excerpt), none for others."""
    received = [(str(r.get("topic") or ""), str(r.get("excerpt") or "")) for r in run.influx_rejects]
    diff = _reject_diff(run.stream, received, influx=True)
    assert not diff, diff


def test_every_reject_has_a_documented_reason_and_no_decoder_failed(run: Run) -> None:
    """Every reject names a reason docs/gateway.md lists; none is 'internal' (a decoder that is not total)."""
    documented = _documented_reasons() - {"internal"}
    wrong = [
        f"{r.get('reason')!r} ({str(r.get('detail'))[:120]}) for {r.get('topic', '')[:60]!r}: "
        f"{r.get('excerpt', '')[:80]!r}"
        for r in run.rejects
        if r.get("reason") not in documented
    ]
    stored = Counter(str(r.get("reason")) for r in run.influx_rejects)
    assert not wrong, f"{len(wrong)} rejects with a reason outside {sorted(documented)}:{_listing(wrong)}"
    assert set(stored) <= documented, f"InfluxDB reject reasons {dict(stored)}"


def test_every_valid_reading_is_stored_exactly_once(run: Run) -> None:
    """Each valid reading is one temperature point with its crate, sensor, seq, time and value (or fault)."""
    expected = {(m.crate, s, m.seq): (m.ts, value) for m in run.stream for s, value in m.readings.items()}
    stored: dict[tuple[str, str, int], list[tuple[int, float | str]]] = {}
    for row in run.temperatures:
        value = row["fault"] if row.get("fault") is not None else row.get("value_c")
        key = (str(row["crate"]), str(row["sensor"]), int(row["seq"]))
        stored.setdefault(key, []).append((int(row["time"]), value))
    missing = [f"{k}: {v}" for k, v in expected.items() if k not in stored]
    wrong = [f"{k}: stored {stored[k]}, sent {v}" for k, v in expected.items() if k in stored and stored[k] != [v]]
    extra = [f"{k}: {v}" for k, v in stored.items() if k not in expected]
    assert not missing, f"{len(missing)} valid readings not stored:{_listing(missing)}"
    assert not wrong, f"{len(wrong)} readings stored differently or more than once:{_listing(wrong)}"
    assert not extra, f"{len(extra)} temperature points no valid reading explains:{_listing(extra)}"
    assert {r.get("profile") for r in run.temperatures} == {"cryo"}


def test_nothing_else_appears_in_influxdb(run: Run) -> None:
    """No gap opens, no shipment is written: InfluxDB holds temperature, alarm, rejected and gateway figures only."""
    expected = {"temperature", "alarm", "rejected", "gateway"}
    assert run.measurements <= expected, f"measurements {sorted(run.measurements)}; gap points {run.gaps[:10]}"


def test_alarms_are_the_excursion_and_the_acks_that_took_them_on(run: Run) -> None:
    """Only the alarm crate's six alarms are raised; each is acknowledged by the first valid ack naming it, with its
    person and note as sent (line-protocol and control characters and all; a line break stored as \\n); every other
    ack is refused."""
    acks = {(m.ack[0], m.ack[1]): m.ack for m in run.stream if m.ack}
    expected = {(rule, sensor, "active", None, None) for rule, sensor in fc.ALARMS}
    expected |= {(rule, sensor, "acknowledged", by, _stored(note)) for rule, sensor, by, note, _ in acks.values()}
    stored = {(r["rule"], r["sensor"], r["state"], r.get("by"), r.get("note")) for r in run.alarm_points}
    assert {r["crate"] for r in run.alarm_points} == {fc.ALARM_CRATE}
    assert stored == expected, f"alarm points missing: {expected - stored}; not expected: {stored - expected}"
    last = dict(run.alarms)  # the latest state of each alarm topic
    shown = {(b["rule"], b["sensor"], b["state"], b.get("acknowledged_by"), b.get("note")) for b in last.values()}
    final = {(r, s, "active", None, None) for r, s in fc.ALARMS if (r, s) not in acks}
    final |= {(r, s, "acknowledged", by, note) for r, s, by, note, _ in acks.values()}
    assert len(last) == len(fc.ALARMS), f"alarm topics {sorted(last)}"
    assert shown == final, f"retained alarms missing: {final - shown}; not expected: {shown - final}"


def test_every_crate_storage_ack_reaches_its_last_seq(run: Run) -> None:
    """Valid crates, and hostile crates whose refused messages still name their seq, are acknowledged through it
    (the last ack published, and the retained one a crate reads when it connects)."""
    last = _last_seqs(run.stream)
    reached = {crate: values[-1] for crate, values in run.acks.items()}
    assert reached == last, f"last stored_through per crate {reached}, expected {last}"
    assert run.retained_acks == last, f"retained stored_through per crate {run.retained_acks}, expected {last}"


def test_the_evidence_archive_holds_each_valid_message_once_and_verifies(run: Run) -> None:
    """The archive holds every stored telemetry message once, as sent, and verify-archive finds it intact."""
    records = [json.loads(line) for line in run.archive.read_bytes().splitlines()]
    archived = Counter((r["topic"], r["payload"]) for r in records)
    expected = Counter((m.topic, m.payload.decode()) for m in run.stream if m.readings)
    missing = [f"{t}: {p[:100]!r}" for (t, p), n in (expected - archived).items()]
    extra = [f"{n} x {t}: {p[:100]!r}" for (t, p), n in (archived - expected).items()]
    assert not missing, f"{len(missing)} stored messages not archived:{_listing(missing)}"
    assert not extra, f"{len(extra)} archive records no stored message explains:{_listing(extra)}"
    keys = ["--keys-dir", str(run.keys_dir)] if run.keys_dir else []
    assert verify_archive([str(run.archive), *keys]) == 0
