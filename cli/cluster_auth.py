"""``coldchain cluster-auth``: the NATS cluster's logins and rights, from ``coldchain provision``'s credentials.

The cluster's equivalent of ``config/mosquitto/acl`` (docs/cluster.md). nats-server
2.9 has no per-login patterns in a static configuration (mosquitto's ``%u``), so
every crate gets a user entry of its own, confined to its own topics. Rights are
on NATS subjects: an MQTT topic maps to a subject by ``/`` -> ``.``; MQTT clients
also subscribe on ``$MQTT.sub.>`` (the delivery subjects of their QoS 1
subscriptions, made by the server). A ``.`` in a topic is refused by nats-server
2.9 (it closes the connection), so a crate id with a dot cannot join the cluster:
it is refused here. Passwords are written in clear into a 0600 file (nats-server
2.9 takes bcrypt hashes, which the standard library cannot make); the file is
included by every node's ``node.conf``. The same file carries the account's
subject mappings into partitions (``--partitions``), so every node maps alike.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from coldchain.topics import ROOT, STAFF_LOGIN_PREFIX, reserved_login, valid_identifier
from gateway.jetstream_stream import PREFIX, mappings

__all__ = ["AuthError", "authorization", "main", "subject"]

GATEWAY_USER = "coldchain-gateway"
_BASE = ROOT.replace("/", ".")
# the delivery subjects of an MQTT client's QoS 1 subscriptions (the server creates them)
_MQTT_DELIVERY = "$MQTT.sub.>"
# nats-server 2.9 checks publish rights on the subject after the account's mapping (seen: a crate's own
# telemetry refused as "cc.p.4.coldchain.v1.crates.C-A.telemetry"): rights name the partitioned subjects
_PARTITIONED = f"{PREFIX}.*"
DEFAULT_PARTITIONS = 32  # the unit of hand-over between gateways (docs/cluster.md); changing it re-maps crates


class AuthError(ValueError):
    """A login cannot be given rights on the cluster: the message says why."""


def subject(topic: str) -> str:
    """The NATS subject of an MQTT topic or filter without dots (``/`` -> ``.``, ``+`` -> ``*``, ``#`` -> ``>``)."""
    if "." in topic or " " in topic:
        raise AuthError(f"topic {topic!r}: nats-server 2.9 carries no '.' or ' ' in MQTT topics")
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


def _quoted(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _user(name: str, password: str, publish: list[str], subscribe: list[str], kinds: str) -> str:
    if not password or any(c in password for c in '"\\\n'):
        raise AuthError(f"login {name!r}: the password is empty or holds a quote, backslash or newline")
    return (
        f'    {{user: "{name}", password: "{password}", allowed_connection_types: {kinds},\n'
        f"     permissions: {{publish: {{allow: {_quoted(publish)}}}, subscribe: {{allow: {_quoted(subscribe)}}}}}}}"
    )


def _crate(crate: str, password: str) -> str:
    if not valid_identifier(crate) or reserved_login(crate):
        raise AuthError(f"crate {crate!r} is no crate id (or is a staff or service login)")
    if "." in crate:
        raise AuthError(f"crate {crate!r}: nats-server 2.9 refuses MQTT topics with '.'; give the crate an id without")
    mine = f"{_BASE}.crates.{crate}"
    publish = [f"{_PARTITIONED}.{mine}.telemetry", f"{mine}.status", f"{_PARTITIONED}.{mine}.events"]
    return _user(crate, password, publish, [f"{mine}.ack", _MQTT_DELIVERY], '["MQTT"]')


def _staff(name: str, password: str) -> str:
    login = name if name.startswith(STAFF_LOGIN_PREFIX) else STAFF_LOGIN_PREFIX + name
    if not valid_identifier(login[len(STAFF_LOGIN_PREFIX) :]):
        raise AuthError(f"staff name {name!r} is not a valid identifier")
    publish = [f"{_PARTITIONED}.{_BASE}.acks.>"]
    # "alarms/#" is two NATS subscriptions: alarms.> and alarms itself
    subscribe = [f"{_BASE}.alarms", f"{_BASE}.alarms.>", f"{_BASE}.crates.*.status", _MQTT_DELIVERY]
    return _user(login, password, publish, subscribe, '["MQTT"]')


def _gateway(password: str) -> str:
    # MQTT for what crates and staff must receive at QoS 1 or retained (a NATS publish reaches them at
    # QoS 0 and is never retained); NATS for the JetStream consumer, its acks and its key-value state
    publish = [
        f"{_BASE}.crates.*.ack",
        f"{_BASE}.alarms.>",
        f"{_BASE}.rejected",
        f"{_BASE}.gateway.>",
        "$JS.API.>",
        "$JS.ACK.>",
        "$JS.FC.>",  # flow-control replies of the ordered consumer that loads a partition's crate state
        "$KV.>",
    ]
    subscribe = [f"{_BASE}.alarms", f"{_BASE}.alarms.>", f"{_BASE}.acks.>", f"{_BASE}.crates.*.status"]
    subscribe += [_MQTT_DELIVERY, "_INBOX.>"]
    return _user(GATEWAY_USER, password, publish, subscribe, '["STANDARD", "MQTT"]')


def authorization(
    gateway: str, crates: dict[str, str], staff: dict[str, str], partitions: int = DEFAULT_PARTITIONS
) -> str:
    """The subject mappings into ``partitions`` and the ``authorization`` block for the gateway's password,
    crate id -> password, staff name -> password."""
    users = [_gateway(gateway)]
    users += [_crate(crate, password) for crate, password in sorted(crates.items())]
    users += [_staff(name, password) for name, password in sorted(staff.items())]
    return mappings(partitions) + "authorization {\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n"


def _read(path: Path) -> str:
    return path.read_text().strip()


def _from_credentials(creds: Path, partitions: int) -> str:
    """The block for what ``coldchain provision --out CREDS`` wrote: crates, staff and the gateway."""
    gateway = creds / "gateway-mqtt-password"
    if not gateway.is_file():
        raise AuthError(f"{gateway} is missing: run 'coldchain provision gateway --out {creds}' first")
    crates = {p.parent.name: _read(p) for p in sorted(creds.glob("*/mqtt-password"))}
    staff = {p.name.removesuffix(".password"): _read(p) for p in sorted(creds.glob(f"{STAFF_LOGIN_PREFIX}*.password"))}
    return authorization(_read(gateway), crates, staff, partitions)


def main(argv: list[str], prog: str = "coldchain cluster-auth") -> int:
    """Write the cluster's ``auth.conf`` (mode 0600) from a directory of provisioned credentials."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Write the NATS cluster's logins and rights from coldchain provision's credentials."
    )
    parser.add_argument("--creds", required=True, type=Path, help="the --out directory of 'coldchain provision'")
    parser.add_argument("--out", required=True, type=Path, help="the auth.conf every node.conf includes")
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help="partitions of the crate space (the gateways' [cluster] partitions must be the same)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.partitions <= 1024:
        print(f"{prog}: --partitions must be 1-1024, not {args.partitions}", file=sys.stderr)
        return 2
    try:
        text = _from_credentials(args.creds, args.partitions)
    except (AuthError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    tmp = args.out.with_name(args.out.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        tmp.replace(args.out)
    except OSError as exc:
        print(f"{prog}: cannot write --out {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"{prog}: wrote {args.out}; reload every node (systemctl reload coldchain-nats)")
    return 0
