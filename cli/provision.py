"""``coldchain provision``: credentials for a crate, a staff member or the gateway.

'provision crate C-0042 --broker-host HOST' makes the crate's broker password and
message-signing key, adds the login to mosquitto's password file, gives the gateway
the key, and writes the agent's TOML ready to copy to the Pi. 'provision staff NAME'
makes a staff login 'staff.NAME' that may read alarms and publish acknowledgements
only. A crate id is never a staff or service login's name (staff.*, coldchain-*):
the broker lets every login write its own crate topics.

A login or key that exists already is never replaced without --rotate: a deployed
crate keeps its password and key until it is given the new ones. --shipment prints
the lines that assign the crate in the gateway's config (the gateway assigns crates
to shipments; the crate itself carries no shipment). Secrets are written with mode
0600 and never printed or logged; mosquitto picks up the new files on SIGHUP
('systemctl reload mosquitto').
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import sys
from pathlib import Path

from coldchain.helptext import help_text
from coldchain.settings.argtypes import port_number
from coldchain.topics import IDENTIFIER_RULE, SERVICE_LOGIN_PREFIX, STAFF_LOGIN_PREFIX, reserved_login, valid_identifier

__all__ = ["GATEWAY_USER", "main", "mosquitto_password_hash"]

GATEWAY_USER = "coldchain-gateway"  # a reserved login (coldchain.topics.reserved_login), like every staff login
BROKER_USER = "mosquitto"  # Debian's mosquitto package runs as this user
# mosquitto 2.0's own format ("$7$" = PBKDF2-SHA512, 101 iterations, 12-byte salt).
_PBKDF2_ITERATIONS = 101
DEFAULT_OUT = "provisioned"
DEFAULT_PROFILE = "cryo"
# RFC 2606/6761 names: documentation placeholders that never reach a real broker
_PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")
_PLACEHOLDER_TLDS = ("example", "invalid")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
CRATE_ONLY = ("shipment", "profile", "broker_host", "broker_port", "ca_file")


class ProvisionError(Exception):
    """Provisioning cannot go on: the message says what to fix."""


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """The password-file entry mosquitto 2.0 expects for ``password``."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _placeholder_host(host: str) -> bool:
    """True for a documentation name (``mqtt.example.org``, ``*.invalid``): never a broker a crate can reach."""
    name = host.lower().rstrip(".")
    if any(name == domain or name.endswith("." + domain) for domain in _PLACEHOLDER_DOMAINS):
        return True
    return name.rsplit(".", 1)[-1] in _PLACEHOLDER_TLDS


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise ProvisionError(f"--broker-host {host!r} is not a host name or IP address")
    if _placeholder_host(host):
        raise ProvisionError(
            f"--broker-host {host} is a documentation placeholder that reaches no broker: give the name the crate"
            " reaches your broker by (the name on the broker's TLS certificate)"
        )


def _toml_string(value: str, option: str) -> str:
    """``value`` as a TOML basic string; text that cannot sit on one config line is refused."""
    if not value or not value.isprintable():
        raise ProvisionError(f"{option} {value!r} must be non-empty printable text")
    return json.dumps(value, ensure_ascii=False)  # a JSON string without control characters is a TOML string


def _write_secret(path: Path, content: str) -> None:
    """Write ``content`` so only the owner can ever read it (created 0600, not chmod-ed later)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    tmp.replace(path)


def _has_login(passwd: Path, username: str) -> bool:
    if not passwd.exists():
        return False
    return any(line.split(":", 1)[0] == username for line in passwd.read_text().splitlines())


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


def _writable_dir(directory: Path) -> None:
    """Refuse before anything is written when ``directory`` cannot be made or written: no half-made login."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ProvisionError(f"cannot write in {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ProvisionError(f"cannot write in {directory}: permission denied on {existing}")


def _preflight(args: argparse.Namespace, login: str, files: list[Path], what: str, holder: str) -> None:
    """Refuse to replace an existing login or key without --rotate, and unwritable places, before writing.

    ``holder`` is who uses the credentials now and must be given the new ones after a rotation.
    """
    passwd = Path(args.broker_dir) / "passwd"
    for directory in {passwd.parent, *(f.parent for f in files)}:
        _writable_dir(directory)
    if args.rotate:
        return
    found = [f"login {login} in {passwd}"] if _has_login(passwd, login) else []
    found += [str(f) for f in files if f.exists()]
    if found:
        raise ProvisionError(
            f"{what} is already provisioned ({'; '.join(found)}): a new password or key would lock out {holder}"
            f" (still using the present ones); pass --rotate to replace them on purpose,"
            f" then give {holder} the new files"
        )


def provision_crate(args: argparse.Namespace) -> Path:
    """Credentials, signing key and agent config for one crate; returns the agent TOML's path."""
    crate: str = args.name
    _check_name(crate, "crate id")
    if reserved_login(crate):
        raise ProvisionError(
            f"crate id {crate!r} is reserved: {STAFF_LOGIN_PREFIX}* and {SERVICE_LOGIN_PREFIX}* are the broker logins"
            " of people and services, and the gateway refuses them as crates"
        )
    if args.broker_host is None:
        raise ProvisionError("a crate needs --broker-host HOST: the name the crate reaches the broker by")
    _check_host(args.broker_host)
    profile = args.profile or DEFAULT_PROFILE
    _check_name(profile, "--profile")
    if args.shipment is not None:
        _check_name(args.shipment, "--shipment")
    ca_file = _toml_string(args.ca_file or "ca.crt", "--ca-file")
    out = Path(args.out) / crate
    key_file = Path(args.keys_dir) / f"{crate}.key"
    written = [out / "mqtt-password", out / "signing.key", out / "agent.toml"]
    _preflight(args, crate, [key_file, *written], f"crate {crate}", "the deployed crate")
    password = secrets.token_urlsafe(24)
    key = secrets.token_hex(32)
    agent = f"""# Agent configuration for crate {crate}, made by 'coldchain provision crate'.
# Copy this directory to the Pi as /etc/coldchain/ (agent.toml, mqtt-password, signing.key; mode 0600),
# with the broker's CA certificate as ca.crt and the gateway's profiles.toml beside it.
[crate]
id = "{crate}"
profile = "{profile}"

[profiles]
file = "profiles.toml"

[mqtt]
host = "{args.broker_host}"
port = {args.broker_port}
username = "{crate}"
password_file = "mqtt-password"
ca_file = {ca_file}

[signing]
key_file = "signing.key"

[spool]
path = "/var/lib/coldchain-agent/spool.sqlite"

[[probes]]
driver = "serial"
port = "/dev/serial/by-id/usb-*"
sensors = ["probe1"]
"""
    # what the crate is given first, the broker's login last: a failure part-way leaves no login nobody holds
    _write_secret(out / "mqtt-password", password + "\n")
    _write_secret(out / "signing.key", key + "\n")
    _write_secret(out / "agent.toml", agent)
    _write_secret(key_file, key + "\n")
    _set_password(Path(args.broker_dir) / "passwd", crate, password)
    return out / "agent.toml"


def provision_staff(args: argparse.Namespace) -> Path:
    """A staff login: read alarms, crate status and the gateway's refusals, publish acknowledgements; returns its
    password file."""
    _check_name(args.name, "staff name")
    username = STAFF_LOGIN_PREFIX + args.name
    broker = Path(args.broker_dir)
    written = Path(args.out) / f"{username}.password"
    _preflight(args, username, [written], f"staff login {username}", f"{args.name}")
    password = secrets.token_urlsafe(18)
    _write_secret(written, password + "\n")
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
        broker.mkdir(parents=True, exist_ok=True)
        acl.write_text(existing + entry)
        _give_to_broker(acl)
    _set_password(broker / "passwd", username, password)
    return written


def provision_gateway(args: argparse.Namespace) -> Path:
    """The gateway's own broker login; returns its password file."""
    written = Path(args.out) / "gateway-mqtt-password"
    _preflight(args, GATEWAY_USER, [written], f"the gateway's login {GATEWAY_USER}", "the running gateway")
    password = secrets.token_urlsafe(24)
    _write_secret(written, password + "\n")
    _set_password(Path(args.broker_dir) / "passwd", GATEWAY_USER, password)
    return written


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=("crate", "staff", "gateway"))
    parser.add_argument("name", nargs="?", help="crate id or staff name (the gateway's login is coldchain-gateway)")
    parser.add_argument(
        "--broker-dir", default="/etc/mosquitto/coldchain", help="mosquitto's passwd and acl (default: %(default)s)"
    )
    parser.add_argument(
        "--keys-dir", default="/etc/coldchain/crate-keys", help="the gateway's crate keys (default: %(default)s)"
    )
    parser.add_argument(
        "--out", help=f"where the new credentials and agent config go (default: ./{DEFAULT_OUT}, said when used)"
    )
    parser.add_argument(
        "--rotate", action="store_true", help="replace an existing login's password (and a crate's signing key)"
    )
    crate = parser.add_argument_group("crates only")
    crate.add_argument("--broker-host", help="the broker as the crate reaches it (required; not example.org)")
    crate.add_argument("--broker-port", type=port_number, help="(default 8883, the TLS listener)")
    crate.add_argument(
        "--shipment", help="shipment id: prints the lines that assign the crate to it in the gateway's config"
    )
    crate.add_argument("--profile", help=f"product profile of the crate (default {DEFAULT_PROFILE})")
    crate.add_argument(
        "--ca-file", help="CA certificate the crate trusts (relative: beside agent.toml; default ca.crt)"
    )
    return parser


def _check_use(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.kind == "gateway" and args.name is not None:
        parser.error(f"provision gateway takes no name (its login is {GATEWAY_USER}), got {args.name!r}")
    if args.kind in ("crate", "staff") and args.name is None:
        parser.error(f"provision {args.kind} needs the {'crate id' if args.kind == 'crate' else 'staff name'}")
    if args.kind != "crate":
        given = ["--" + name.replace("_", "-") for name in CRATE_ONLY if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)}: for 'provision crate' only")
    args.name = args.name or GATEWAY_USER
    args.broker_port = args.broker_port or 8883


def _shipment_lines(crate: str, shipment: str) -> str:
    return (
        f"crate {crate} goes on shipment {shipment} once the gateway's config says so (the gateway assigns crates"
        f" to shipments; the crate carries no shipment); add to it and restart the gateway:\n"
        f'[crates."{crate}"]\nshipment = "{shipment}"'
    )


def main(argv: list[str], prog: str = "coldchain provision") -> int:
    """Parse ``provision crate|staff|gateway`` and write the credentials; 2 on bad use or a refusal."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    _check_use(parser, args)
    if args.out is None:
        args.out = DEFAULT_OUT
        print(f"no --out given: writing under {Path(DEFAULT_OUT).resolve()}")
    handlers = {"crate": provision_crate, "staff": provision_staff, "gateway": provision_gateway}
    try:
        written = handlers[args.kind](args)
    except ProvisionError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{prog}: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    replaced = " (replaced: give the new files to whatever used the old ones)" if args.rotate else ""
    print(f"provisioned {args.kind} {args.name}: credentials in {written.parent.resolve()} (mode 0600){replaced}")
    if args.kind == "crate" and args.shipment is not None:
        print(_shipment_lines(args.name, args.shipment))
    print("reload the broker to apply: systemctl reload mosquitto")
    return 0
