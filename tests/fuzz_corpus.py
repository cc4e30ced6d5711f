"""A seeded stream of hostile MQTT messages for the gateway, interleaved with valid telemetry (test_gateway_fuzz).

Structure-aware: each hostile message is a valid payload (telemetry, status, lid or gap event, staff ack) with one
field given a hostile JSON value or removed, its bytes damaged, or put on an odd topic under the gateway's
subscriptions. Each carries a marker (``"fz":"h00042"``, its first key) so a missing reject names it. Whether the
contract refuses a message is decided by fuzz_contract (a small model of the README and docs/gateway.md), not by the
gateway's code; a mutation that happens to be valid (``value_c`` = -1, an unknown event name) is not sent.

Accounting the docs prescribe: a refused telemetry whose crate and seq can still be read counts as handled for that
crate. Such messages only go to the hostile crates (``FZ-H*``), each taking that crate's next seq, so no gap opens
and the crate's storage ack must reach its last seq; on the valid crates' topics only messages that cannot settle
one of their seqs are sent.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

from fuzz_contract import MAX_PAYLOAD, Message, accepted, readable_seq, signature, valid_ack

TS = 1_764_086_400_000  # the valid stream's first sample (as gateway_helpers.TS)
VALID_CRATES = ("FZ-V1", "FZ-V2", "FZ-V3", "FZ-V4")
HOSTILE_CRATES = ("FZ-H1", "FZ-H2", "FZ-H3")
EVENT_CRATES = ("FZ-E1", "FZ-E2")  # status, lid and gap events that must all be refused: no telemetry there
# One reading of its three probes at -100 °C raises warning_high and critical_high on each: six alarms that staff
# acks (hostile ones, and valid ones with odd names and notes) may take on; the first valid ack of each does.
ALARM_CRATE = "FZ-A1"
ALARMS = tuple(
    (rule, sensor) for rule in ("warning_high", "critical_high") for sensor in ("probe1", "probe2", "probe3")
)
BYS = ('a"b', "a\\b", "a,b=c d", "é🙂", "x" * 100, " Zoë ", "Robert'); DROP TABLE alarm;--")
NOTES = ("", "a\nb\r\nc", 'q"uote\\', "\x00\x01\x1f\x7f", "x" * 1000, "é🙂\u2028", 'a,b=c d\n"\\', "\t tab ")
SENSORS = ("probe1", "probe2")
_SLOT = "\x00slot\x00"  # with a number: stands for a hostile JSON text until the payload is serialized


def _deep(n: int, kind: str) -> str:
    return "[" * n + "]" * n if kind == "list" else '{"a":' * n + "1" + "}" * n


# Hostile JSON values, as raw JSON text: NaN, Infinity and 1e309 are tokens Python's json reads (as non-finite
# floats); 1 followed by 5000 zeros exceeds Python's 4300-digit limit (the whole payload is then unreadable); depths of
# 3000 and 5000 are beyond any recursion limit (depths near 1000 are avoided: whether they parse depends on the stack).
# fmt: off
VALUES = (
    "{}", '{"a":1}', '{"OPEN":1}', "[]", "[1,2]", '["probe1"]', '[{"sensor":"probe1","value_c":-170}]',
    "true", "false", "null", '""', '"x"', '"1"', '"-170.5"', '"NaN"', "0", "-1", "1.5", "-0.0", "1e-400",
    str(10**400), str(-(10**400)), "1" + "0" * 5000, str(2**63), str(2**53), str(2**52), str(-(2**63) - 1),
    "1e309", "-1e309", "1E400", "NaN", "Infinity", "-Infinity", "-170.25", "81", "-200.0001",
    _deep(50, "list"), _deep(50, "dict"), _deep(5000, "list"), _deep(3000, "dict"),
    json.dumps("x" * 5000), json.dumps("x" * 20_000), json.dumps("é" * 9000),
)
# Strings for id fields: line-protocol and topic syntax, control characters, a lone surrogate, lengths.
IDS = (
    "a,b", "a=b", "a b", "a\nb", 'a"b', "a\\b", "a\x00b", "\x1b[31m", "", " ", "-lead", ".dot", "_u",
    "x" * 65, "é", "probe1 ", "\ud800", "a/b", "+", "#", "crate=x,profile=y value_c=1", "staff.alice",
)
# Topic levels the broker delivers. Not here: a level with a wildcard (no client may publish it), invalid UTF-8,
# a control character (C0, DEL, C1) or a non-character (U+FFFE, U+FDD0...): mosquitto refuses such a topic as a
# malformed packet and disconnects the publisher, so no gateway ever sees it.
TOPIC_LEVELS = (
    "", "a b", "x=y,z", 'q"uote', "back\\slash", "é🙂", "$x", "-lead", ".dot", "x" * 65, "y" * 300,
    "staff.alice", "staff.", "coldchain-gateway", "coldchain-", "FZ-V1 ", "\u2028",
)
# fmt: on


def valid_reading(crate: str, seq: int) -> dict[str, float | str]:
    """The valid stream's values: a few hundredths around -175 °C (no alarm rule is near), one probe fault."""
    if seq % 50 == 7:
        return {"probe1": round(-175.0 + (seq % 13) / 100, 2), "probe2": "OPEN"}
    return {s: round(-175.0 + ((seq * 37 + i * 11 + len(crate)) % 17) / 100, 2) for i, s in enumerate(SENSORS)}


def telemetry_body(crate: str, seq: int, readings: dict[str, float | str], marker: str | None = None) -> dict[str, Any]:
    """A v1 telemetry object (the marker first, when given)."""
    body: dict[str, Any] = {"fz": marker} if marker else {}
    wire = [
        {"sensor": s, "value_c": None, "fault": v} if isinstance(v, str) else {"sensor": s, "value_c": v}
        for s, v in readings.items()
    ]
    body.update({"v": 1, "crate": crate, "seq": seq, "ts": TS + seq * 1000, "readings": wire})
    return body


def _dump(body: Any, *values: str) -> bytes:
    """Compact JSON of ``body``; the i-th hostile JSON text of ``values`` stands where ``_slot(i)`` was put."""
    text = json.dumps(body, separators=(",", ":"))
    for i, value in enumerate(values):
        text = text.replace(json.dumps(_slot(i)), value)
    return text.encode("utf-8", "surrogatepass")


def _slot(i: int) -> str:
    return f"{_SLOT}{i}"


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _REMOVE and isinstance(node, dict):
        node.pop(last, None)
    elif value is _REMOVE:
        node.pop(int(last))
    else:
        node[int(last) if last.isdigit() else last] = value


_REMOVE = object()
# fmt: off
_PATHS = {
    "telemetry": (
        "v", "crate", "seq", "ts", "readings", "readings.0", "readings.0.sensor", "readings.0.value_c",
        "readings.0.fault", "readings.1.fault", "readings.1.value_c", "readings.1.sensor", "profile", "powered_on",
    ),
    "status": ("v", "crate", "state"),
    "lid": ("v", "crate", "ts", "event"),
    "gap": ("v", "crate", "ts", "event", "first_seq", "last_seq"),
    "ack": ("v", "crate", "rule", "sensor", "by", "note", "ts"),
}
# fmt: on
_ID_PATHS = ("crate", "readings.0.sensor", "readings.1.sensor", "profile", "rule", "sensor", "by")
_BAD_BYTES = (
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x00",
    b"\x1b",
    b"\n",
    b"\r\n",
)


def _base(kind: str, crate: str, marker: str, seq: int, target: tuple[str, str]) -> dict[str, Any]:
    ts = TS + seq * 1000
    if kind == "telemetry":
        body = telemetry_body(crate, seq, {"probe1": -170.0, "probe2": "OPEN"}, marker)
        body.update(profile="cryo", powered_on=TS)
        return body
    head: dict[str, Any] = {"fz": marker, "v": 1, "crate": crate}
    if kind == "status":
        return {**head, "state": "online", "ts": ts}
    if kind == "lid":
        return {**head, "ts": ts, "event": "lid_open"}
    if kind == "gap":
        return {**head, "ts": ts, "event": "gap", "reason": "spool_full", "first_seq": 5, "last_seq": 7}
    return {**head, "rule": target[0], "sensor": target[1], "by": "Alice", "note": "re-iced", "ts": ts}


def _damage(rng: random.Random, payload: bytes, keep: int) -> tuple[bytes, str]:
    """Byte-level damage after the first ``keep`` bytes (the marker survives)."""
    how = rng.randrange(6)
    cut = rng.randint(keep, max(keep, len(payload) - 1))
    if how == 0:
        return payload[:cut], "truncated"
    if how == 1:
        bad = rng.choice(_BAD_BYTES)
        return payload[:cut] + bad + payload[cut:], f"byte {bad!r} inserted"
    if how == 2:
        return payload + rng.choice((b"}", b",", b"x", b"\x00")), "trailing garbage"
    if how == 3:
        return payload[:keep] + b"\x00" * 3 + payload[keep:], "NULs"
    if how == 4:
        return payload.replace(b"}", b"]", 1), "bracket swapped"
    # the test broker sets no message_size_limit (mosquitto's default): a payload beyond 16 KiB reaches the gateway
    pad = b" " * (MAX_PAYLOAD + rng.randrange(1, 4000) - len(payload))
    return payload[:-1] + b',"pad":"' + pad + b'"}', "beyond 16 KiB"


def _hostile(
    rng: random.Random, kind: str, topic: str, crate: str, marker: str, seq: int, target: tuple[str, str]
) -> tuple[bytes, str]:
    """One mutation of a valid ``kind`` payload for ``crate`` (which the topic may not name)."""
    body = _base(kind, crate, marker, seq, target)
    op = rng.randrange(10)
    if op <= 4:  # one field, or (one in four) two unrelated fields, given hostile values
        paths = rng.sample(_PATHS[kind], 2 if rng.random() < 0.25 else 1)
        if len(paths) == 2 and (paths[0].startswith(paths[1]) or paths[1].startswith(paths[0])):
            paths = paths[:1]
        values = [
            json.dumps(rng.choice(IDS)) if p in _ID_PATHS and rng.random() < 0.5 else rng.choice(VALUES) for p in paths
        ]
        for i, path in enumerate(paths):
            _set(body, path, _slot(i))
        return _dump(body, *values), f"{kind} " + " ".join(f"{p}={v[:40]}" for p, v in zip(paths, values, strict=True))
    if op == 5:
        path = rng.choice(_PATHS[kind])
        _set(body, path, _REMOVE)
        return _dump(body), f"{kind} without {path}"
    if op == 6:
        value = rng.choice(VALUES)
        if rng.random() < 0.5:
            return f'["{marker}",{value}]'.encode(), f"{kind} as an array"
        return value.encode(), "a bare JSON value"
    if op == 7 and kind == "telemetry":
        readings = [{"sensor": f"p{i % rng.choice((64, 65, 70))}", "value_c": -170.0} for i in range(65)]
        body["readings"] = readings[: rng.choice((65, 64))] if rng.random() < 0.5 else readings[:2] * 2
        return _dump(body), "readings too many or repeated"
    if op == 7 and kind == "ack":
        body.update(by=rng.choice(BYS), note=rng.choice(NOTES))
        return _dump(body), "ack with odd text"
    if op == 8:
        other = rng.choice((*VALID_CRATES, *HOSTILE_CRATES, "FZ-X9"))
        body["crate"] = other
        return _dump(body), f"{kind} naming crate {other}"
    raw = _dump(body)
    if rng.random() < 0.15:
        encoded = rng.choice((b"\xef\xbb\xbf" + raw, raw.decode().encode("utf-16"), raw.decode().encode("utf-32-le")))
        return encoded, f"{kind} in another encoding"
    damaged, how = _damage(rng, raw, len(marker) + 9)
    return damaged, f"{kind} {how}"


_BAD_SIGS = (*VALUES, json.dumps("é" * 64), json.dumps("0" * 64), json.dumps("\ud800"))


def _sign(payload: bytes, marker: str, keys: dict[str, bytes], bad: str | None = None) -> tuple[bytes, str]:
    """The payload with a ``sig`` after its marker: its crate's signature, or the JSON text ``bad``."""
    head = f'{{"fz":"{marker}",'.encode()
    try:
        body = json.loads(payload.decode("utf-8")) if payload.startswith(head) else None
    except (ValueError, RecursionError):
        body = None
    crate = body.get("crate") if isinstance(body, dict) else None
    key = keys.get(crate) if isinstance(crate, str) else None
    if body is None:
        return payload, ""
    if bad is not None or key is None:
        sig, label = bad or _BAD_SIGS[-2], " sig"
    else:
        try:
            sig, label = json.dumps(signature(body, key)), " signed"
        except ValueError:
            return payload, " unsigned"  # its crate could not sign it either
    return head + b'"sig":' + sig.encode() + b"," + payload[len(head) :], f"{label}={sig[:20]}"


def _extras_telemetry(crate: str, seq: int, marker: str, keys: dict[str, bytes] | None) -> Message:
    """Valid telemetry carrying unknown fields with hostile values: the decoder must ignore them and store it."""
    readings = valid_reading(crate, seq)
    body = telemetry_body(crate, seq, readings, marker)
    ids = [i for i in IDS if keys is None or i != "\ud800"]  # a lone surrogate cannot be signed
    body.update(x_str='a,b=c d\n"\\\x00\x1f', x_ids=ids, x_null=None, x_neg=-1e308, x_big=_slot(0))
    text = _dump(body, str(10**400)).decode()
    payload = (text[:-1] + ',"x_deep":' + _deep(50, "list") + ',"x_obj":' + _deep(50, "dict") + "}").encode()
    if seq % 3 == 0:  # exactly the largest payload the contract allows (a signature takes 73 bytes)
        room = MAX_PAYLOAD - len(payload) - 9 - (73 if keys is not None else 0)
        payload = payload[:-1] + b',"pad":"' + b"p" * room + b'"}'
    if keys is not None:
        payload = _sign(payload, marker, keys)[0]
    return _valid(crate, seq, payload, "valid telemetry with hostile extra fields", readings)


def _valid(crate: str, seq: int, payload: bytes, label: str, readings: dict[str, float | str], **more: Any) -> Message:
    """A valid telemetry message: its readings must be stored once (``ts``: the sample's time if not TS + seq s)."""
    more.setdefault("ts", TS + seq * 1000)
    return Message(topic_of(crate, "telemetry"), payload, label, readings=readings, crate=crate, seq=seq, **more)


def _event(payload: bytes) -> object:
    return json.loads(payload).get("event")


def topic_of(crate: str, kind: str) -> str:
    """``coldchain/v1/crates/{crate}/{kind}``."""
    return f"coldchain/v1/crates/{crate}/{kind}"


def alarm_telemetry(now_ms: int, keys: dict[str, bytes] | None) -> Message:
    """The alarm crate's one reading, live (so its alarms are announced at once): six alarms."""
    readings: dict[str, float | str] = {sensor: -100.0 for _, sensor in ALARMS}
    body = {**telemetry_body(ALARM_CRATE, 1, readings), "ts": now_ms - 1000}
    if keys is not None:
        body["sig"] = signature(body, keys[ALARM_CRATE])
    return _valid(ALARM_CRATE, 1, _dump(body), "excursion", readings, ts=now_ms - 1000)


def _ack_topic(rng: random.Random, crate: str, target: tuple[str, str]) -> str:
    levels = [crate, *target]
    if rng.random() < 0.4:  # levels that differ from the payload's, or are odd
        levels[rng.randrange(3)] = rng.choice((*TOPIC_LEVELS, "critical_high", "probe2", "FZ-V2"))
    return "coldchain/v1/acks/" + "/".join(levels)


def hostile_stream(seed: int, count: int, now_ms: int, keys: dict[str, bytes] | None = None) -> list[Message]:
    """``count`` hostile messages (and some valid ones with hostile extras on the hostile crates), in order.

    With ``keys`` (the gateway requires signatures) telemetry carries its crate's signature, or a hostile one.
    """
    rng = random.Random(seed)
    next_seq = dict.fromkeys(HOSTILE_CRATES, 1)
    out = [alarm_telemetry(now_ms, keys)]
    active = {f"{ALARM_CRATE}/{rule}/{sensor}" for rule, sensor in ALARMS}
    n = 0
    while sum(m.hostile for m in out) < count:
        n += 1
        marker = f"h{n:05d}"
        kind = rng.choices(("telemetry", "status", "lid", "gap", "ack"), weights=(50, 12, 9, 9, 20))[0]
        where = rng.random()
        seq, target = 10**6, rng.choice(ALARMS)  # 10**6: never one of the valid crates' seqs
        if kind == "ack":
            crate = rng.choice((ALARM_CRATE, ALARM_CRATE, *VALID_CRATES, *EVENT_CRATES))
            topic = _ack_topic(rng, crate, target)
        elif where < 0.15:  # an odd crate level; the payload names it, or a real crate
            level = rng.choice(TOPIC_LEVELS)
            kind_topic = "events" if kind in ("lid", "gap") else kind
            topic, crate = topic_of(level, kind_topic), rng.choice((level, level, "FZ-H1"))
        elif kind == "telemetry" and where < 0.45:
            crate = rng.choice(VALID_CRATES)
            topic = topic_of(crate, "telemetry")
        elif kind == "telemetry":
            crate = rng.choice(HOSTILE_CRATES)
            topic, seq = topic_of(crate, "telemetry"), next_seq[crate]
            if rng.random() < 0.04:
                out.append(_extras_telemetry(crate, seq, marker, keys))
                next_seq[crate] += 1
                continue
        else:
            crate = rng.choice((*EVENT_CRATES, *VALID_CRATES) if kind == "status" else EVENT_CRATES)
            topic = topic_of(crate, "events" if kind in ("lid", "gap") else kind)
        payload, label = _hostile(rng, kind, topic, crate, marker, seq, target)
        if keys is not None and kind == "telemetry":
            bad = rng.choice(_BAD_SIGS) if rng.random() < 0.2 else None
            payload, signed = _sign(payload, marker, keys, bad)
            label += signed
        ack = valid_ack(topic, payload, now_ms) if kind == "ack" else None
        if ack is not None and "/".join(ack[:3]) in active:
            active.discard("/".join(ack[:3]))  # it takes the alarm on; the next valid ack of it is refused
            out.append(Message(topic, payload, label, ack=(ack[1], ack[2], ack[3], ack[4], ack[5])))
            continue
        if accepted(topic, payload, now_ms, keys):
            if kind in ("lid", "gap") and _event(payload) not in ("lid_open", "lid_closed", "gap"):
                out.append(Message(topic, payload, f"{label}: an event the gateway stores nowhere"))
            continue  # otherwise the mutation left it valid: it would feed the alarms or the seqs, not sent
        settles = readable_seq(topic, payload, keys)
        if settles is not None and (topic.split("/")[3] not in HOSTILE_CRATES or settles != seq):
            continue  # it would settle a valid crate's seq (as the docs say it must): not on these topics
        # QoS 0 only where order cannot matter (the broker may send it ahead of queued QoS 1 messages)
        qos = 0 if settles is None and ack is None and rng.random() < 0.03 else 1
        message = Message(topic, payload, label, hostile=True, qos=qos, properties=rng.random() < 0.1)
        if settles is not None:
            message = replace(message, crate=topic.split("/")[3], seq=settles)
            next_seq[message.crate] += 1
        out.append(message)
    return out


def valid_stream(seqs: int, keys: dict[str, bytes] | None = None) -> dict[str, list[Message]]:
    """Each valid crate's telemetry, seqs 1..``seqs`` in order (signed, with ``keys``)."""

    def body(crate: str, seq: int) -> dict[str, Any]:
        out = telemetry_body(crate, seq, valid_reading(crate, seq))
        return out if keys is None else {**out, "sig": signature(out, keys[crate])}

    return {
        crate: [
            _valid(
                crate,
                s,
                _dump(body(crate, s)),
                f"valid {crate} seq {s}",
                valid_reading(crate, s),
                properties=s % 10 == 3,
            )
            for s in range(1, seqs + 1)
        ]
        for crate in VALID_CRATES
    }


def interleave(seed: int, hostile: list[Message], valid: dict[str, list[Message]]) -> list[Message]:
    """One stream: every source's order kept, mixed at random; each valid crate's last message at the very end,
    so its storage ack reaching that seq means everything before it was written."""
    rng = random.Random(seed + 1)
    queues = [list(reversed(hostile))] + [list(reversed(msgs[:-1])) for msgs in valid.values()]
    out: list[Message] = []
    while any(queues):
        queue = rng.choices(queues, weights=[len(q) for q in queues])[0]
        out.append(queue.pop())
    # a crate that missed its storage ack sends again: some valid messages a second time, later on (stored once)
    for index in sorted(rng.sample([i for i, m in enumerate(out) if m.readings], 20), reverse=True):
        again = replace(out[index], label=f"{out[index].label} again", readings={})
        out.insert(rng.randint(index + 1, len(out)), again)
    return out + [msgs[-1] for msgs in valid.values()]
