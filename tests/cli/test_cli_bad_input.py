"""Every ``coldchain`` subcommand on bad arguments and bad config files: one clear line on stderr (argparse's
usage line before it is allowed), no traceback, exit status 2, and no service reached.

The corpus runs through ``cli.main.main`` in this process (what is proved is the argument and config handling,
and each real process would spend seconds importing its program); a sample runs as real processes, to prove
the exit status a shell sees and that bytes of argv that are not UTF-8 reach the error line unharmed.

Services are never needed: every broker and database address in the corpus is a loopback port nothing listens
on, so a bad input that slipped through would exit 1 (connection refused) instead of 2 and fail here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_helpers import ROOT

from cli.influx_settings import CONNECTION_KEYS as INFLUX_CONNECTION_KEYS
from cli.influx_settings import PROGRAM_KEYS as INFLUX_PROGRAM_KEYS
from cli.main import SUBCOMMANDS
from cli.main import main as coldchain
from cli.mqtt_read import CLUSTER_KEYS as MQTT_CLUSTER_KEYS
from cli.mqtt_read import CONNECTION_KEYS as MQTT_CONNECTION_KEYS
from cli.mqtt_read import PROGRAM_KEYS as MQTT_PROGRAM_KEYS
from cli.provision import main as provision
from cli.services import free_port
from coldchain.record.evidence import GENESIS, archive_line

SHIPPED = ROOT / "config"
CONFIGURED = ("agent", "gateway", "board", "alerts", "ack", "query", "report", "release")  # those taking --config
HASH = "0" * 64
RELEASE = ["C-1", "--by", "qa", "--decision", "released", "--note", "n", "--sha256", HASH, "--from", "2026-11-01"]
# what each configured command needs besides --config to get as far as reading it
CONFIG_ARGS = {
    "agent": [],
    "gateway": [],
    "board": [],
    "alerts": [],
    "ack": ["C-1", "critical_high", "--by", "alice", "--note", "n"],
    "query": ["C-1"],
    "report": ["C-1", "--format", "json"],
    "release": RELEASE,
}
UNDECODABLE = "\udcff"  # how Python hands over a command-line byte that is not UTF-8 (0xff here)
PROGRAM_CONFIG = {"agent": "agent.toml", "board": "board.toml"}  # the rest read the gateway's file


@dataclass(frozen=True, slots=True)
class Case:
    """One command line and a word its error line must contain."""

    argv: tuple[str, ...]
    names: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of the command did."""

    case: Case
    returncode: int
    stdout: str
    stderr: str


def _run(case: Case, cwd: Path) -> Outcome:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *case.argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Outcome(case, result.returncode, result.stdout, result.stderr)


def _run_all(cases: Sequence[Case], cwd: Path) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda case: _run(case, cwd), cases))


def _call(case: Case) -> Outcome:
    """``coldchain`` run by its ``main`` in this process, ending as the interpreter would end it: a SystemExit's
    code, or a traceback on stderr and status 1. Bounded: a command that gets past its checks runs in a thread
    it is abandoned in (the test fails naming it)."""
    out, err = io.StringIO(), io.StringIO()
    status: list[int] = []

    def run() -> None:
        try:
            status.append(coldchain(list(case.argv)))
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=err)
            status.append(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
        except BaseException:  # what the interpreter would print as a traceback
            err.write(traceback.format_exc())
            status.append(1)

    handlers = logging.root.handlers[:]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        thread = threading.Thread(target=run, name=f"coldchain {' '.join(case.argv)[:60]}", daemon=True)
        thread.start()
        thread.join(timeout=30)
    logging.root.handlers[:] = handlers
    if thread.is_alive():
        return Outcome(case, -1, out.getvalue(), f"still running after 30 s\n{err.getvalue()}")
    return Outcome(case, status[0], out.getvalue(), err.getvalue())


def _call_all(cases: Sequence[Case], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    monkeypatch.chdir(cwd)
    return [_call(case) for case in cases]


def _undecodable(case: Case) -> bool:
    return any(UNDECODABLE in arg for arg in case.argv)


def _problems(outcome: Outcome) -> str | None:
    """What is wrong with how the command refused its input, or None."""
    lines = outcome.stderr.splitlines()
    if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
        return "a traceback"
    if outcome.returncode != 2:
        return f"exit status {outcome.returncode}"
    if not lines:
        return "nothing on stderr"
    usage = [i for i, line in enumerate(lines) if line.startswith("usage:")]
    # argparse: its usage (possibly wrapped over several lines) and then one 'prog: error: ...' line
    argparse_form = usage == [0] and ": error: " in lines[-1] and all(line.startswith(" ") for line in lines[1:-1])
    if len(lines) != 1 and not argparse_form:
        return f"{len(lines)} lines on stderr"
    if outcome.case.names.lower() not in lines[-1].lower():
        return f"the error line does not name {outcome.case.names!r}"
    return None


def _assert_all_refused(outcomes: list[Outcome]) -> None:
    failures = [
        f"coldchain {' '.join(o.case.argv)}: {problem}\n    stderr: {o.stderr.strip()[-600:]!r}"
        for o in outcomes
        if (problem := _problems(o)) is not None
    ]
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the shipped configs (every address a closed loopback port) and one provisioned crate."""
    root = tmp_path_factory.mktemp("bad-input")
    for name in ("agent.toml", "gateway.toml", "board.toml", "profiles.toml"):
        text = (SHIPPED / name).read_text()
        text = text.replace("port = 1883", f"port = {free_port()}").replace("port = 8090", f"port = {free_port()}")
        text = text.replace('"http://127.0.0.1:8086"', f'"http://127.0.0.1:{free_port()}"')
        (root / name).write_text(text)
    common = ["--broker-dir", str(root / "etc"), "--keys-dir", str(root / "keys"), "--out", str(root / "out")]
    assert provision(["crate", "C-1", "--broker-host", "127.0.0.1", *common]) == 0
    (root / "keys" / "C-2.key").write_text("not hex\n")
    line, _ = archive_line(GENESIS, "coldchain/v1/crates/C-2/telemetry", '{"v":1,"crate":"C-2"}', 1)
    (root / "archive.jsonl").write_bytes(line)
    (root / "bad.toml").write_text("not = [toml")
    (root / "a-directory").mkdir()
    os.mkfifo(root / "fifo")
    return root


def _config_variants(root: Path, command: str) -> list[tuple[str, str]]:
    """(config file, words its error names): missing, not TOML, an unknown key, a value of the wrong type."""
    base = (root / PROGRAM_CONFIG.get(command, "gateway.toml")).read_text()
    unknown = root / f"unknown-{command}.toml"
    typo = base.replace("[mqtt]\n", '[mqtt]\nhots = "x"\n').replace("[influxdb]\n", "[influxdb]\nhots = 1\n")
    unknown.write_text(typo)
    wrong = root / f"wrong-{command}.toml"
    quoted_ports = re.sub(r"^port = (\d+)$", r'port = "\1"', base, flags=re.M)
    wrong.write_text(re.sub(r'^url = ".*"$', "url = 8086", quoted_ports, flags=re.M))
    return [
        (str(root / "no-such.toml"), "cannot read"),
        (str(root / "bad.toml"), "not valid TOML"),
        (str(unknown), "hots: is not a known setting"),
        (str(wrong), "must be"),
    ]


def _guarded(command: str, argv: list[str]) -> tuple[str, ...]:
    """``argv`` with the broker or database a closed port and a short run, should the command get that far."""
    if command == "sim" and argv[:1] == ["fleet"]:
        argv = [*argv, "--count", "1"] + ([] if "--mqtt-port" in argv else ["--mqtt-port", str(free_port())])
    elif command == "sim":
        argv = [*argv, "--duration", "0.1"]
    if command in ("alerts", "ack") and "--port" not in argv:
        argv = [*argv, "--port", str(free_port())]
    if command in ("query", "report", "release") and "--influx-url" not in argv and "--config" not in argv:
        argv = [*argv, "--influx-url", f"http://127.0.0.1:{free_port()}"]
    return (command, *argv)


def test_shipped_configs_are_valid_bases(workdir: Path) -> None:
    """The corpus's bases load, so each bad variant fails for the fault put in it and nothing else."""
    from board.config import load_config as board_config
    from edge.config import load_config as agent_config
    from gateway.config import load_config as gateway_config

    assert agent_config(workdir / "agent.toml").crate == "C-0042"
    assert gateway_config(workdir / "gateway.toml").default_profile == "cryo"
    assert board_config(workdir / "board.toml").mqtt.port != 1883


def test_bad_config_files_end_in_one_line_and_status_2(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's config error: one line naming file and problem, exit 2, whichever command reads it;
    each kind of config error also from a real process (the agent's, the gateway's and the board's)."""
    cases = [
        Case(_guarded(command, [*CONFIG_ARGS[command], "--config", path]), names)
        for command in CONFIGURED
        for path, names in _config_variants(workdir, command)
    ]
    real = [case for case in cases if case.argv[0] in PROGRAM_CONFIG or case.argv[0] == "gateway"][::3]
    _assert_all_refused(_run_all(real, workdir) + _call_all(cases, workdir, monkeypatch))


def _bad_arguments(root: Path) -> list[Case]:
    scenario = str(SHIPPED / "scenarios" / "cryo-normal-5d.toml")
    provisioned = ["--broker-dir", str(root / "etc"), "--keys-dir", str(root / "keys"), "--out", str(root / "out")]
    ack = ["C-1", "critical_high", "--by", "alice", "--note", "n"]
    table: list[tuple[str, list[str], str]] = [
        ("sim", ["--period", "abc"], "--period"),
        ("sim", ["--speed", "nan"], "--speed"),
        ("sim", ["--scenario", str(root / "no-such.toml")], "cannot read"),
        ("sim", ["--scenario", str(root / "bad.toml")], "not valid TOML"),
        ("sim", ["--scenario", scenario, "--start", "-100"], "cannot be combined"),
        ("sim", ["--bogus"], "unrecognized arguments"),
        ("sim", ["--sensor", "a b"], "--sensor"),
        ("sim", ["--link", str(root / "no-such-dir" / "x")], "--link"),
        ("sim", ["fleet", "--mqtt-port", "99999"], "--mqtt-port"),
        ("sim", ["fleet", "--rate", "0"], "--rate"),
        ("sim", ["fleet", "--credentials", str(root / "no-such.txt")], "cannot read"),
        ("agent", [], "--config"),
        ("agent", ["--config", str(root / "fifo")], "not a regular file"),
        ("agent", ["--config", str(root / "agent.toml"), "--log-level", "LOUD"], "--log-level"),
        ("gateway", [], "--config"),
        ("gateway", ["--config", str(root / "gateway.toml"), "--health", "now"], "unrecognized arguments"),
        ("demo", ["--duration", "-1"], "--duration"),
        ("demo", ["--duration", "nan"], "--duration"),
        ("provision", [], "kind"),
        ("provision", ["wizard", *provisioned], "invalid choice"),
        ("provision", ["crate", "C-9", *provisioned], "--broker-host"),
        ("provision", ["crate", "C-9", "--broker-host", "mqtt.example.org", *provisioned], "placeholder"),
        ("provision", ["crate", "C+9", "--broker-host", "127.0.0.1", *provisioned], "must be"),
        ("provision", ["crate", "C-9", "--broker-host", "127.0.0.1", "--broker-port", "0", *provisioned], "port"),
        ("provision", ["crate", "C-1", "--broker-host", "127.0.0.1", *provisioned], "--rotate"),
        ("provision", ["staff", "bob", "--shipment", "SHP-7", *provisioned], "provision crate"),
        ("provision", ["gateway", "gw2", *provisioned], "takes no name"),
        ("board", [], "--config"),
        ("board", ["hash-password"], "--user"),
        ("board", ["hash-password", "--user", "a b"], "must be"),
        ("alerts", ["--port", "99999"], "--port"),
        ("alerts", ["--quiet-period", "nan"], "--quiet-period"),
        ("alerts", ["--username", "x", "--password-file", str(root / "no-such")], "no such file"),
        ("alerts", ["--cert-file", str(root / "agent.toml")], "--key-file"),
        ("alerts", ["--bogus"], "unrecognized arguments"),
        ("alerts", ["--host", ""], "--host"),
        ("alerts", ["--username", UNDECODABLE], "--username"),
        ("ack", ["C-1", "critical_high"], "--by"),
        ("ack", ["C+1", "critical_high", "--by", "alice", "--note", "n"], "must be"),
        ("ack", ["C-1", "critical_high", "--by", " ", "--note", "n"], "--by"),
        ("ack", [*ack, "--timeout", "nan"], "--timeout"),
        ("ack", ["C-1", "critical_high", "--by", "alice", "--note", "n" * 5000], "--note"),
        ("ack", [*ack, "--ca-file", str(root / "no-such.crt")], "no such file"),
        ("ack", ["C-1", "critical_high", "--by", "alice", "--note", UNDECODABLE], "--note"),
        ("query", [], "crate"),
        ("query", ["C+1"], "crate id"),
        ("query", ["C-1", "--influx-url", "notaurl"], "--influx-url"),
        ("query", ["C-1", "--influx-url", "http://127.0.0.1:99999"], "--influx-url"),
        ("query", ["C-1", "--since", "6x"], "duration"),
        ("query", ["C-1", "--since", "1h", "--from", "2026-11-01"], "not both"),
        ("query", ["C-1", "--from", "yesterday"], "ISO 8601"),
        ("query", ["C-1", "--max-hold", "-5"], "--max-hold"),
        ("query", ["C-1", "--profiles", str(root / "no-such.toml")], "cannot read"),
        ("query", ["C-1", "--profile", "lukewarm"], "not a profile"),
        ("query", ["C-1", "--database", UNDECODABLE], "--database"),
        ("query", ["C-1", "--api", "v2"], "--org"),
        ("query", ["C-1", "--api", "v2", "--org", "o", "--bucket", "b", "--token-file", str(root / "no")], "no such"),
        ("report", ["C-1"], "--out"),
        ("report", ["C-1", "--out", str(root / "no-such-dir" / "r.pdf")], "--out"),
        ("report", ["C-1", "--out", str(root / "a-directory")], "is a directory"),
        ("report", ["C-1", "--format", "xml"], "--format"),
        ("report", ["C-1", "--format", "json", "--influx-url", "ftp://127.0.0.1/"], "--influx-url"),
        ("report", ["C-1", "--format", "json", "--max-hold", "0"], "--max-hold"),
        ("report", ["C-1", "--format", "json", "--product", UNDECODABLE], "--product"),
        ("release", ["C-1"], "--by"),
        ("release", [*RELEASE[:-2], "--since", "1h"], "--since"),
        ("release", [*RELEASE[:-4], "xyz", "--from", "2026-11-01"], "--sha256"),
        ("release", [*RELEASE, "--decision", "maybe"], "--decision"),
        ("release", [*RELEASE, "--influx-url", "notaurl"], "--influx-url"),
        ("release", [*RELEASE, "--profile", "lukewarm"], "not a profile"),
        ("cluster-auth", [], "--creds"),
        ("cluster-auth", ["--creds", str(root / "no-such"), "--out", str(root / "auth.conf")], "provision gateway"),
        ("verify-archive", [], "archive"),
        ("verify-archive", [str(root / "no-such.jsonl")], "no such archive file"),
        ("verify-archive", [str(root / "a-directory")], "not a file"),
        ("verify-archive", [str(root / "archive.jsonl"), "--keys-dir", str(root / "no-such")], "--keys-dir"),
        ("verify-archive", [str(root / "archive.jsonl"), "--keys-dir", str(root / "keys")], "hex"),
    ]
    assert {command for command, _, _ in table} == set(SUBCOMMANDS)
    return [Case(_guarded(command, argv), names) for command, argv, names in table]


def test_bad_arguments_end_in_one_line_and_status_2(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every subcommand refuses bad arguments with one line naming the problem and exit 2, before any service;
    argv that is not UTF-8 from real processes, whose stderr, unlike a StringIO, must encode what they print."""
    cases = [*_bad_arguments(workdir), Case(("no-such-command",), "unknown command")]
    real = [case for case in cases if _undecodable(case)]
    _assert_all_refused(_run_all(real, workdir) + _call_all(cases, workdir, monkeypatch))
    # the refused provisioning runs wrote nothing: only the crate provisioned on purpose has a login
    assert [line.split(":", 1)[0] for line in (workdir / "etc" / "passwd").read_text().splitlines()] == ["C-1"]
    assert [p.name for p in (workdir / "out").iterdir()] == ["C-1"]


def test_no_command_is_bad_use(workdir: Path) -> None:
    """'coldchain' alone says a command is needed, on stderr, and exits 2."""
    outcome = _run(Case((), ""), workdir)
    assert outcome.returncode == 2
    assert outcome.stderr.splitlines()[-1] == "coldchain: error: a command is needed; 'coldchain --help' lists them"


def test_help_texts_are_plain(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's --help exits 0 and shows no reStructuredText backticks."""
    commands = [[name] for name in SUBCOMMANDS] + [["sim", "fleet"], ["board", "hash-password"], []]
    outcomes = _call_all([Case((*command, "--help"), "") for command in commands], workdir, monkeypatch)
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.case.argv
        assert outcome.stdout.startswith("usage: coldchain"), outcome.case.argv
        assert "`" not in outcome.stdout, outcome.case.argv


def test_version_is_the_package_version(workdir: Path) -> None:
    """--version prints the installed package's version."""
    from importlib.metadata import version

    outcome = _run(Case(("--version",), ""), workdir)
    assert outcome.returncode == 0
    assert outcome.stdout == f"coldchain {version('coldchain')}\n"


def _documented_keys(config: Path, table: str) -> set[str]:
    """The keys an example config documents in ``[table]``, set or commented out."""
    section = re.search(rf"^\[{table}\]\n(.*?)(?=^\[)", config.read_text(), flags=re.M | re.S)
    assert section is not None
    return set(re.findall(r"^#?\s*([a-z_]+)\s*=", section.group(1), flags=re.M))


@pytest.mark.parametrize(
    ("table", "known"),
    [
        ("mqtt", set(MQTT_CONNECTION_KEYS) | set(MQTT_CLUSTER_KEYS) | MQTT_PROGRAM_KEYS),
        ("influxdb", set(INFLUX_CONNECTION_KEYS) | INFLUX_PROGRAM_KEYS),
    ],
)
def test_people_commands_know_every_documented_program_key(table: str, known: set[str]) -> None:
    """A program's config given to alerts/ack/query/report with --config is never refused for one of its own keys."""
    for name in ("agent.toml", "gateway.toml", "board.toml"):
        if f"[{table}]" in (SHIPPED / name).read_text():
            assert _documented_keys(SHIPPED / name, table) <= known, name
