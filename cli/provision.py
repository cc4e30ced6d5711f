"""``coldchain provision``: credentials for a crate, a staff member or the gateway.

``provision crate C-0042`` makes the crate's broker password and message-signing
key, adds the login to mosquitto's password file, gives the gateway the key, and
writes the agent's TOML ready to copy to the Pi. ``provision staff NAME`` makes a
staff login ``staff.NAME`` that may read alarms and publish acknowledgements only.
A crate id is never a staff or service login's name (``staff.*``, ``coldchain-*``):
the broker lets every login write its own crate topics. Secrets are
written with mode 0600 and never printed or logged; mosquitto picks up the new
files on SIGHUP (``systemctl reload mosquitto``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import pwd
import secrets
import sys
from pathlib import Path

from coldchain.topics import IDENTIFIER_RULE, SERVICE_LOGIN_PREFIX, STAFF_LOGIN_PREFIX, reserved_login, valid_identifier

__all__ = ["GATEWAY_USER", "main", "mosquitto_password_hash"]

GATEWAY_USER = "coldchain-gateway"  # a reserved login (coldchain.topics.reserved_login), like every staff login
BROKER_USER = "mosquitto"  # Debian's mosquitto package runs as this user
# mosquitto 2.0's own format ("$7$" = PBKDF2-SHA512, 101 iterations, 12-byte salt).
_PBKDF2_ITERATIONS = 101


class ProvisionError(Exception):
    """Provisioning cannot go on: the message says what to fix."""


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """The password-file entry mosquitto 2.0 expects for ``password``."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _write_secret(path: Path, content: str) -> None:
    """Write ``content`` so only the owner can ever read it (created 0600, not chmod-ed later)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    tmp.replace(path)


def _set_password(passwd: Path, username: str, password: str) -> None:
    lines = passwd.read_text().splitlines() if passwd.exists() else []
    kept = [line for line in lines if line.split(":", 1)[0] != username]
    kept.append(f"{username}:{mosquitto_password_hash(password)}")
    _write_secret(passwd, "\n".join(kept) + "\n")
    _give_to_broker(passwd)


def _give_to_broker(path: Path) -> None:
    """Let the broker's own user read ``path``: mosquitto reads it after dropping root."""
    if os.geteuid() != 0:
        return
    try:
        broker = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return  # no broker on this host: the files will be copied to it
    os.chown(path, broker.pw_uid, broker.pw_gid)


def _check_name(name: str, what: str) -> None:
    if not valid_identifier(name):
        raise ProvisionError(f"{what} {name!r} must be {IDENTIFIER_RULE}")


def provision_crate(args: argparse.Namespace) -> Path:
    """Credentials, signing key and agent config for one crate; returns the agent TOML's path."""
    crate: str = args.name
    _check_name(crate, "crate id")
    if reserved_login(crate):
        raise ProvisionError(
            f"crate id {crate!r} is reserved: {STAFF_LOGIN_PREFIX}* and {SERVICE_LOGIN_PREFIX}* are the broker logins"
            " of people and services, and the gateway refuses them as crates"
        )
    password = secrets.token_urlsafe(24)
    key = secrets.token_hex(32)
    out = Path(args.out) / crate
    _set_password(Path(args.broker_dir) / "passwd", crate, password)
    _write_secret(Path(args.keys_dir) / f"{crate}.key", key + "\n")
    _write_secret(out / "mqtt-password", password + "\n")
    _write_secret(out / "signing.key", key + "\n")
    agent = f"""# Agent configuration for crate {crate}, made by 'coldchain provision crate'.
# Copy this directory to the Pi as /etc/coldchain/ (agent.toml, mqtt-password, signing.key; mode 0600),
# with the broker's CA certificate as ca.crt and the gateway's profiles.toml beside it.
[crate]
id = "{crate}"
profile = "{args.profile}"

[profiles]
file = "profiles.toml"

[mqtt]
host = "{args.broker_host}"
port = {args.broker_port}
username = "{crate}"
password_file = "mqtt-password"
ca_file = "{args.ca_file}"

[signing]
key_file = "signing.key"

[spool]
path = "/var/lib/coldchain-agent/spool.sqlite"

[[probes]]
driver = "serial"
port = "/dev/serial/by-id/usb-*"
sensors = ["probe1"]
"""
    _write_secret(out / "agent.toml", agent)
    return out / "agent.toml"


def provision_staff(args: argparse.Namespace) -> Path:
    """A staff login: read alarms, crate status and the gateway's refusals, publish acknowledgements; returns its
    password file."""
    _check_name(args.name, "staff name")
    username = STAFF_LOGIN_PREFIX + args.name
    password = secrets.token_urlsafe(18)
    broker = Path(args.broker_dir)
    _set_password(broker / "passwd", username, password)
    acl = broker / "acl"
    entry = (
        f"\nuser {username}\n"
        "topic read coldchain/v1/alarms/#\n"
        "topic read coldchain/v1/crates/+/status\n"
        "topic write coldchain/v1/acks/#\n"
        # the gateway's refusals: 'coldchain ack' waits there for the answer to its acknowledgement
        "topic read coldchain/v1/rejected\n"
        # the crate patterns apply to every login: a deny is checked before them
        f"topic deny coldchain/v1/crates/{username}/#\n"
    )
    existing = acl.read_text() if acl.exists() else ""
    if f"\nuser {username}\n" not in existing:
        acl.write_text(existing + entry)
        _give_to_broker(acl)
    _write_secret(Path(args.out) / f"{username}.password", password + "\n")
    return Path(args.out) / f"{username}.password"


def provision_gateway(args: argparse.Namespace) -> Path:
    """The gateway's own broker login; returns its password file."""
    password = secrets.token_urlsafe(24)
    _set_password(Path(args.broker_dir) / "passwd", GATEWAY_USER, password)
    _write_secret(Path(args.out) / "gateway-mqtt-password", password + "\n")
    return Path(args.out) / "gateway-mqtt-password"


def main(argv: list[str], prog: str = "coldchain provision") -> int:
    """Parse ``provision crate|staff|gateway`` and write the credentials."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=("crate", "staff", "gateway"))
    parser.add_argument("name", nargs="?", default=GATEWAY_USER, help="crate id or staff name")
    parser.add_argument("--broker-dir", default="/etc/mosquitto/coldchain", help="holds mosquitto's passwd and acl")
    parser.add_argument("--keys-dir", default="/etc/coldchain/crate-keys", help="the gateway's crate signing keys")
    parser.add_argument("--out", default="provisioned", help="where the new credentials and agent config go")
    parser.add_argument("--shipment", help="shipment id the crate is assigned to")
    parser.add_argument("--profile", default="cryo", help="product profile of the crate")
    parser.add_argument("--broker-host", default="mqtt.example.org", help="the broker as the crate reaches it")
    parser.add_argument("--broker-port", type=int, default=8883)
    parser.add_argument(
        "--ca-file", default="ca.crt", help="CA certificate the crate trusts (relative: beside agent.toml)"
    )
    args = parser.parse_args(argv)
    handlers = {"crate": provision_crate, "staff": provision_staff, "gateway": provision_gateway}
    try:
        written = handlers[args.kind](args)
    except (ProvisionError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    print(f"provisioned {args.kind} {args.name}: credentials in {written.parent} (mode 0600)")
    print("reload the broker to apply: systemctl reload mosquitto")
    return 0
