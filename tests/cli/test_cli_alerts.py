"""``coldchain alerts`` against a real mosquitto holding real retained alarm messages."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from locked_broker import start_locked_broker

from cli.alerts import _transition, main
from cli.provision import mosquitto_password_hash
from cli.services import Mosquitto, free_port
from coldchain.alarms.lifecycle import Alarm
from coldchain.topics import alarm_topic, status_topic
from coldchain.wire import AlarmView, CrateStatus, decode_alarm, encode, encode_alarm

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NOW_MS = int(time.time() * 1000)


def _alarm(crate: str, rule: str, severity: str, state: str, started_ago_s: int, **extra: object) -> tuple[str, bytes]:
    started = NOW_MS - started_ago_s * 1000
    message = Alarm(
        crate=crate,
        rule=rule,
        kind="high",
        severity=severity,
        sensor="probe1",
        state=state,
        started_ts=started,
        raised_ts=started,
        raised_at=started,
        profile="cryo",
        seq=17,
        value_c=-148.5,
        threshold_c=-150.0 if severity == "critical" else -160.0,
    )
    payload = encode_alarm(message) if not extra else json.dumps({**message.to_wire(), **extra}).encode()
    return alarm_topic(crate, rule, "probe1"), payload


@pytest.fixture
def retain(mosquitto: Mosquitto) -> Iterator[Callable[..., None]]:
    """Publish retained messages to the session broker; delete them again after the test."""
    topics: list[str] = []

    def send(*messages: tuple[str, bytes]) -> None:
        topics.extend(t for t, _ in messages)
        publish.multiple(
            [{"topic": t, "payload": p, "qos": 1, "retain": True} for t, p in messages],
            hostname=mosquitto.host,
            port=mosquitto.port,
        )

    yield send
    if topics:
        publish.multiple(
            [{"topic": t, "payload": b"", "qos": 1, "retain": True} for t in topics],
            hostname=mosquitto.host,
            port=mosquitto.port,
        )


def _broker_args(broker: Mosquitto) -> list[str]:
    return ["--host", broker.host, "--port", str(broker.port)]


def test_lists_open_alarms_most_severe_then_oldest_first(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Active and acknowledged alarms are listed, critical before warning, older before newer; cleared ones not."""
    a, b = f"{crate_prefix}-A", f"{crate_prefix}-B"
    retain(
        _alarm(a, "warning_high", "warning", "active", started_ago_s=7200),
        _alarm(a, "critical_high", "critical", "active", started_ago_s=60),
        _alarm(b, "critical_high", "critical", "acknowledged", started_ago_s=600, by="alice", note="re-iced"),
        _alarm(b, "warning_high", "warning", "cleared", started_ago_s=9000),
    )
    assert main(_broker_args(mosquitto)) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.split()[2:3] in ([a], [b])]
    assert [line.split()[:4] for line in lines] == [
        ["critical", "acknowledged", b, "critical_high"],
        ["critical", "active", a, "critical_high"],
        ["warning", "active", a, "warning_high"],
    ]
    assert "alice" in lines[0]
    assert re.search(r"\b2h0[0-4]m\b", lines[2]), lines[2]  # two hours and the minutes a loaded machine took


def test_json_prints_the_alarm_payloads(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the retained payloads as a JSON array, fields as published."""
    crate = f"{crate_prefix}-J"
    topic, payload = _alarm(crate, "critical_high", "critical", "active", started_ago_s=30)
    retain((topic, payload))
    assert main([*_broker_args(mosquitto), "--json"]) == 0
    mine = [a for a in json.loads(capsys.readouterr().out) if a["crate"] == crate]
    assert mine == [json.loads(payload)]


def test_offline_crate_is_marked(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crate whose retained status is offline is marked beside its alarms and listed."""
    crate = f"{crate_prefix}-O"
    retain(
        _alarm(crate, "critical_high", "critical", "active", started_ago_s=30),
        (status_topic(crate), encode(CrateStatus(crate, "offline", NOW_MS))),
    )
    assert main(_broker_args(mosquitto)) == 0
    out = capsys.readouterr().out
    assert f"{crate} (offline)" in out
    assert "offline crates:" in out


def test_unreadable_alarm_message_is_reported_and_others_still_listed(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retained payload that is not an alarm is named on stderr; valid alarms are still listed."""
    crate = f"{crate_prefix}-U"
    retain(
        (alarm_topic(crate, "critical_high", "probe2"), b'{"crate": 5}'),
        _alarm(crate, "critical_high", "critical", "active", started_ago_s=30),
    )
    assert main(_broker_args(mosquitto)) == 0
    captured = capsys.readouterr()
    assert f"{crate}/critical_high/probe2" in captured.err
    assert any(crate in line and "probe1" in line for line in captured.out.splitlines())


def test_config_file_mqtt_table_names_the_broker(
    mosquitto: Mosquitto,
    retain: Callable[..., None],
    crate_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--config reads the [mqtt] table of a gateway or agent TOML, ignoring the program's other keys."""
    crate = f"{crate_prefix}-C"
    retain(_alarm(crate, "critical_high", "critical", "active", started_ago_s=30))
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "gw"\n\n'
        '[influxdb]\nurl = "http://127.0.0.1:1"\n'
    )
    assert main(["--config", str(config)]) == 0
    assert crate in capsys.readouterr().out


def test_unreachable_broker_error_names_address_and_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, the command fails with the address and what to check."""
    port = free_port()
    assert main(["--host", "127.0.0.1", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"mqtt://127.0.0.1:{port}" in err
    assert "mosquitto" in err


def test_wrong_password_error_says_the_login_was_refused(
    make_mosquitto: Callable[..., Mosquitto], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broker that refuses the login gets an error naming the user and the credentials to check."""
    passwd = tmp_path / "passwd"
    passwd.write_text(f"staff.alice:{mosquitto_password_hash('right')}\n")
    broker = make_mosquitto(extra_conf=f"password_file {passwd}\n")
    wrong = tmp_path / "pw"
    wrong.write_text("wrong\n")
    code = main([*_broker_args(broker), "--username", "staff.alice", "--password-file", str(wrong)])
    err = capsys.readouterr().err
    assert code == 1
    assert "refused us as staff.alice" in err
    assert "--password-file" in err


def _follow(*args: str, stderr: int = subprocess.PIPE) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """``coldchain alerts --follow ARGS`` as a child process, and a queue its output lines arrive in."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "alerts", "--follow", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _next_line_with(lines: queue.Queue[str], *texts: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        line = lines.get(timeout=left)
        if all(text in line for text in texts):
            return line
    raise AssertionError(f"no line with all of {texts!r} within {timeout} s")


def test_follow_streams_each_transition_within_a_second(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str
) -> None:
    """--follow --json prints the current alarm, then raise, acknowledge and clear as they are published."""
    crate = f"{crate_prefix}-F"
    retain(_alarm(crate, "warning_high", "warning", "active", started_ago_s=100))
    process, lines = _follow("--json", *_broker_args(mosquitto))
    try:
        assert json.loads(_next_line_with(lines, crate))["rule"] == "warning_high"
        seen = []
        for state, extra in (("active", {}), ("acknowledged", {"by": "bob"}), ("cleared", {})):
            sent = time.monotonic()
            retain(_alarm(crate, "critical_high", "critical", state, started_ago_s=5, **extra))
            # the session broker holds other files' retained alarms, which --follow prints too: only this crate's
            body = json.loads(_next_line_with(lines, crate, "critical_high"))
            assert time.monotonic() - sent < 1.0
            seen.append((body["state"], body.get("by")))
        assert seen == [("active", None), ("acknowledged", "bob"), ("cleared", None)]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


@pytest.mark.fault
def test_follow_survives_a_broker_restart(make_mosquitto: Callable[..., Mosquitto], crate_prefix: str) -> None:
    """--follow says the connection was lost, reconnects by itself and prints the next transition."""
    broker = make_mosquitto()
    crate = f"{crate_prefix}-R"

    def send(topic: str, payload: bytes) -> None:
        publish.single(topic, payload, qos=1, retain=True, hostname=broker.host, port=broker.port)

    send(*_alarm(crate, "warning_high", "warning", "active", started_ago_s=100))
    process, lines = _follow("--json", *_broker_args(broker))
    try:
        assert json.loads(_next_line_with(lines, crate))["rule"] == "warning_high"
        broker.stop()
        broker.start()
        send(*_alarm(crate, "critical_high", "critical", "active", started_ago_s=5))
        assert json.loads(_next_line_with(lines, "critical_high", timeout=10))["state"] == "active"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "lost, reconnecting" in err
    assert "reconnected" in err


def test_staff_login_over_tls_on_the_shipped_broker_config_via_config_file(
    tmp_path: Path, crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the shipped locked-down broker (TLS, passwords, ACL), a staff login made by 'coldchain provision'
    and named in a TOML [mqtt] table with relative paths lists the alarm the gateway retained."""
    locked = start_locked_broker(tmp_path, staff=("alice",))
    broker, creds, ca = locked.broker, locked.creds, locked.ca
    port, tls_port = broker.port, locked.tls_port
    try:
        crate = f"{crate_prefix}-T"
        topic, payload = _alarm(crate, "critical_high", "critical", "active", started_ago_s=60)
        gateway_password = (creds / "gateway-mqtt-password").read_text().strip()
        publish.single(
            topic, payload, qos=1, retain=True, hostname="127.0.0.1", port=port,
            auth={"username": "coldchain-gateway", "password": gateway_password},
        )  # fmt: skip
        staff = tmp_path / "staff"
        staff.mkdir()
        (staff / "ca.crt").write_bytes(ca.read_bytes())
        (staff / "pw").write_text((creds / "staff.alice.password").read_text())
        (staff / "staff.toml").write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {tls_port}\ntls = true\nca_file = "ca.crt"\n'
            'username = "staff.alice"\npassword_file = "pw"\n'
        )
        assert main(["--config", str(staff / "staff.toml")]) == 0
        out = capsys.readouterr().out
        assert any(line.startswith("critical") and crate in line for line in out.splitlines())
    finally:
        broker.stop()


def test_follow_prints_readable_transition_lines(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str
) -> None:
    """Without --json, each transition is one line: time, RAISED/ACKED/CLEARED, what, value, limit, who."""
    crate = f"{crate_prefix}-H"
    process, lines = _follow(*_broker_args(mosquitto), stderr=subprocess.STDOUT)
    try:
        _next_line_with(lines, "following alarm transitions")  # the listing is printed: subscribed
        retain(_alarm(crate, "critical_high", "critical", "active", started_ago_s=5))
        raised = _next_line_with(lines, crate)
        retain(_alarm(crate, "critical_high", "critical", "acknowledged", started_ago_s=5, by="carol", note="on it"))
        acked = _next_line_with(lines, crate)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert f"RAISED  critical {crate} critical_high probe1  -148.50 °C (limit -150.00)" in raised
    assert acked.rstrip().endswith("by carol (on it)")


def test_alarm_engine_payload_extensions_are_shown(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Optional fields of the alarm engine's payload: no seq (offline rule), shipment, late, acknowledged_by."""
    crate = f"{crate_prefix}-E"
    _, payload = _alarm(crate, "offline", "warning", "acknowledged", started_ago_s=50)
    body = {**json.loads(payload), "sensor": "crate", "seq": None, "shipment": "S-17", "late": True}
    body["acknowledged_by"] = "dave"
    retain((alarm_topic(crate, "offline", "crate"), json.dumps(body).encode()))
    assert main(_broker_args(mosquitto)) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if f"{crate} [S-17]" in line]
    assert line.split()[:5] == ["warning", "acknowledged", "(late)", crate, "[S-17]"]
    assert line.rstrip().endswith("dave")


def test_alarms_that_need_review_are_listed_per_shipment_by_default(
    mosquitto: Mosquitto, retain: Callable[..., None], crate_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A late excursion and one that cleared unacknowledged are listed under NEEDS REVIEW, per shipment; a reviewed
    one is not; --active-only leaves the section out; an escalated active alarm says so."""
    late, live, done = f"{crate_prefix}-L", f"{crate_prefix}-C", f"{crate_prefix}-D"
    retain(
        _alarm(late, "critical_high", "critical", "cleared", 7200, late=True, shipment="SHP-9", origin="Kyoto",
               destination="Leiden", product="iPSC cardiomyocytes", ended_ts=NOW_MS - 3_600_000),
        _alarm(live, "warning_high", "warning", "cleared", 600, ended_ts=NOW_MS - 300_000),
        _alarm(done, "warning_high", "warning", "cleared", 600, acknowledged_by="Ana", acknowledged_ts=NOW_MS),
        _alarm(live, "critical_high", "critical", "active", 1200, escalated=True),
    )  # fmt: skip
    assert main(_broker_args(mosquitto)) == 0
    out = capsys.readouterr().out
    section = out[out.index("NEEDS REVIEW") :]
    assert "shipment SHP-9 (iPSC cardiomyocytes, Kyoto -> Leiden):" in section
    rows = {line.split()[1]: line for line in section.splitlines() if line.startswith("  ") and crate_prefix in line}
    assert set(rows) == {late, live}
    assert rows[late].split()[:4] == ["critical", late, "critical_high", "probe1"]
    assert rows[late].endswith("late")
    assert section.index("shipment SHP-9") < section.index("no shipment:") < section.index(live)
    assert any(live in line and "active ESCALATED" in line for line in out[: out.index("NEEDS REVIEW")].splitlines())
    assert main([*_broker_args(mosquitto), "--active-only"]) == 0
    assert "NEEDS REVIEW" not in capsys.readouterr().out


def test_follow_says_escalated_and_reviewed() -> None:
    """A transition to escalated reads ESCALATED; the review of an alarm that cleared unacknowledged reads REVIEWED."""

    def view(state: str, **extra: object) -> AlarmView:
        topic, payload = _alarm("C-1", "critical_high", "critical", state, 60, **extra)
        alarm = decode_alarm(topic, payload)
        assert alarm is not None
        return alarm

    raised, escalated = view("active"), view("active", escalated=True)
    assert " ESCALATED " in _transition(escalated, raised)
    cleared, reviewed = view("cleared"), view("cleared", acknowledged_by="Ana", note="cells fine")
    line = _transition(reviewed, cleared)
    assert " REVIEWED " in line
    assert line.endswith("by Ana (cells fine)")
