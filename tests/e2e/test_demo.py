"""``coldchain demo``: the story in order, the board's demo login, the kept data and its commands, cleanup."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from cli.demo_process import watch
from cli.demo_setup import DataDir
from cli.demo_view import DemoView
from cli.services import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
SPEED = "4"  # the two-minute story in about 35 s
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@dataclass
class Demo:
    """A demo run's output, exit status and kept data directory."""

    lines: list[str]
    code: int
    data_dir: Path

    def pids(self) -> list[int]:
        return [int(m.group(1)) for line in self.lines if (m := re.match(r"started .* pid (\d+)", line))]

    def index(self, *words: str) -> int:
        """The first line holding every word."""
        return next(i for i, line in enumerate(self.lines) if all(w in line for w in words))


def _run_demo(data_dir: Path, until: str, timeout: float, *extra: str, on_line: object = None) -> Demo:
    """Run the demo until a line contains ``until`` (then SIGINT), or until it exits by itself."""
    argv = [sys.executable, "-m", "cli.main", "demo", "--speed", SPEED, "--data-dir", str(data_dir), *extra]
    demo = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line.rstrip())
            if until and until in line:
                seen.set()
            if callable(on_line):
                on_line(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if until:
            assert seen.wait(timeout), f"no {until!r} within {timeout} s:\n" + "\n".join(lines[-40:])
            demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=timeout if not until else 60)
    finally:
        if demo.poll() is None:  # a failed wait: stop it as Ctrl-C does, so it stops its children too
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
        reader.join(timeout=5)
    return Demo(lines, code, data_dir)


def _gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One run of the whole story, stopped with Ctrl-C once it is told."""
    return _run_demo(tmp_path_factory.mktemp("demo") / "data", "the story is told", 120)


@pytest.mark.integration
def test_the_story_happens_in_order_and_ctrl_c_stops_every_process(story: Demo) -> None:
    """Warning, critical, alice's acks, cleared; C-0002 offline then its late excursion; SIGINT leaves nothing."""
    assert story.code == 0, "\n".join(story.lines[-40:])
    order = [
        story.index("ALARM", "C-0003 warning_high", "active"),
        story.index("ALARM", "C-0003 critical_high", "active"),
        story.index("ALARM", "C-0003 critical_high", "acknowledged by alice"),
        story.index("ALARM", "C-0003 critical_high", "cleared"),
        story.index("ALARM", "C-0003 warning_high", "cleared"),
    ]
    assert order == sorted(order), "\n".join(story.lines)
    assert story.index("ALARM", "C-0003 warning_high", "acknowledged by alice") < order[-1]
    offline = story.index("CRATE  C-0002 offline")
    assert "CRATE  C-0002 online" in story.lines[offline:]
    late = [story.index("C-0002 warning_high", "active", "LATE"), story.index("C-0002 warning_high", "cleared", "LATE")]
    assert offline < late[0] < late[1]
    assert not [line for line in story.lines if "C-0001" in line and line.startswith("ALARM")]
    assert len(story.pids()) == 10  # mosquitto, influxd, gateway, board, 3 x (sim, agent)
    assert not _gone(story.pids()), "processes left behind"
    assert story.lines[-1] == "demo stopped"


def _commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line.strip())[1:] for line in lines if line.strip().startswith("coldchain ")]


@pytest.fixture
def served(story: Demo) -> Iterator[str]:
    """``coldchain demo --serve-data`` on the story's data; yields the URL it serves it at."""
    argv = [sys.executable, "-m", "cli.main", "demo", "--data-dir", str(story.data_dir), "--serve-data"]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    assert server.stdout is not None
    first = server.stdout.readline()
    try:
        url = re.search(r"serving the demo's data at (\S+)", first)
        assert url, first + server.stdout.read(2000)
        yield url.group(1)
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0


def _rows(url: str, query: str) -> list[dict[str, object]]:
    """InfluxQL rows (tags included) from the server at ``url``, database coldchain."""
    params = urllib.parse.urlencode({"q": query, "db": "coldchain", "epoch": "ms"})
    with urllib.request.urlopen(f"{url}/query?{params}", timeout=30) as response:
        series = json.load(response)["results"][0].get("series", [])
    return [{**dict(zip(s["columns"], v, strict=True)), **s.get("tags", {})} for s in series for v in s["values"]]


@pytest.mark.integration
def test_the_gateway_stored_alices_acks_and_the_late_excursion(story: Demo, served: str) -> None:
    """InfluxDB keeps both acks by alice with her note, and C-0002's warning as late, raised and cleared."""
    acks = _rows(served, "SELECT * FROM alarm WHERE crate = 'C-0003' AND state = 'acknowledged'")
    assert sorted((row["rule"], row["by"]) for row in acks) == [("critical_high", "alice"), ("warning_high", "alice")]
    late = _rows(served, "SELECT * FROM alarm WHERE crate = 'C-0002'")
    assert sorted((row["rule"], row["state"], row["late"]) for row in late) == [
        ("warning_high", "active", True),
        ("warning_high", "cleared", True),
    ]


@pytest.mark.integration
def test_the_printed_commands_work_on_the_kept_data_after_the_demo(story: Demo, served: str, tmp_path: Path) -> None:
    """Every command the demo printed at its end runs against --serve-data and shows the story."""
    commands = _commands(story.lines[story.index("To explore it") :])
    assert [c[:2] for c in commands] == [["demo", "--data-dir"], ["query", "C-0003"], ["query", "C-0002"],
                                         ["report", "SHP-2026-0412"], ["report", "SHP-2026-0411"]]  # fmt: skip
    outputs = []
    for command in commands[1:]:
        argv = [sys.executable, "-m", "cli.main", *command]
        done = subprocess.run(argv, check=False, capture_output=True, text=True, env=ENV, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    assert "critical_high >-150" in outputs[0]
    assert "crate C-0002" in outputs[1]
    assert (tmp_path / "SHP-2026-0412.pdf").read_bytes().startswith(b"%PDF")
    report = json.loads(outputs[3])
    assert report["crates"] == ["C-0002"]
    alarms = [(a["rule"], a["state"]) for a in report["alarms"]]
    assert alarms == [("warning_high", "active"), ("warning_high", "cleared")]


@pytest.mark.integration
def test_a_fixed_duration_run_ends_by_itself_and_its_board_signs_in_the_printed_login(tmp_path: Path) -> None:
    """--duration stops the demo (no process left); meanwhile the printed login opens the board."""
    signed_in: list[int] = []

    def sign_in(line: str) -> None:
        found = re.search(r"board (http://[^/]+)/ \(sign in as '(\w+)', password '([^']+)'\)", line)
        if found:
            url = urllib.parse.urlparse(found.group(1))
            connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
            form = urllib.parse.urlencode({"user": found.group(2), "password": found.group(3), "next": "/"})
            connection.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            signed_in.append(response.status if response.getheader("Location") == "/" else -response.status)

    demo = _run_demo(tmp_path / "data", "", 60, "--duration", "3", on_line=sign_in)
    assert demo.code == 0, "\n".join(demo.lines)
    assert signed_in == [303]
    assert len(demo.pids()) == 10
    assert not _gone(demo.pids())


@pytest.mark.integration
def test_clean_removes_the_kept_data_but_never_a_directory_the_demo_did_not_make(story: Demo, tmp_path: Path) -> None:
    """--clean removes the story's data directory; a foreign one is refused (exit 2) and left alone."""
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    for data_dir, code in ((foreign, 2), (story.data_dir, 0)):
        argv = [sys.executable, "-m", "cli.main", "demo", "--data-dir", str(data_dir), "--clean"]
        assert subprocess.run(argv, check=False, capture_output=True, env=ENV).returncode == code
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert not story.data_dir.exists()


@pytest.mark.integration
def test_a_data_directory_in_use_is_neither_cleaned_nor_reused(tmp_path: Path) -> None:
    """While another demo (or --serve-data) holds the directory, --clean and a new run are refused with exit 2."""
    data = DataDir(tmp_path / "data")
    data.fresh()
    argv = [sys.executable, "-m", "cli.main", "demo", "--data-dir", str(data.path)]
    with data.locked():
        for extra in (["--clean"], ["--duration", "1"]):
            done = subprocess.run([*argv, *extra], check=False, capture_output=True, text=True, env=ENV)
            assert (done.returncode, done.stdout) == (2, ""), done.stderr
            assert "in use by another 'coldchain demo'" in done.stderr
    assert data.exists()
    assert subprocess.run([*argv, "--clean"], check=False, capture_output=True, env=ENV).returncode == 0
    assert not data.path.exists()
    assert os.listdir(tmp_path) == []


TOPICS = st.sampled_from(
    ["coldchain/v1/crates/C-0001/telemetry", "coldchain/v1/crates/C-0001/status", "coldchain/v1/alarms/C-0001/r/s"]
)


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS | st.text(max_size=80), payload=st.binary(max_size=300) | st.sampled_from([b"[]", b"1", b"null"]))
def test_the_view_survives_any_message(topic: str, payload: bytes) -> None:
    """Any topic and payload (not a JSON object, not UTF-8...) is shown or counted, never an exception."""
    out = io.StringIO()
    view = DemoView(("C-0001",), out, False, [])
    view.handle(topic, payload)
    view.handle("coldchain/v1/crates/C-0001/status", b'{"v":1,"crate":"C-0001","state":"offline","ts":1}')
    assert "CRATE  C-0001 offline" in out.getvalue()


def test_the_terminal_view_redraws_one_line_per_crate_in_place() -> None:
    """On a terminal the frame shows each crate's reading, state and open alarm, and the next frame overwrites it."""
    out = io.StringIO()
    view = DemoView(("C-0001", "C-0003"), out, True, ["coldchain demo"])
    view.handle("coldchain/v1/crates/C-0003/telemetry", b'{"v":1,"crate":"C-0003","seq":1,"ts":1,'
                b'"readings":[{"sensor":"probe1","value_c":-149.5}]}')  # fmt: skip
    alarm = {"v": 1, "crate": "C-0003", "rule": "critical_high", "sensor": "probe1", "severity": "critical",
             "state": "active", "value_c": -149.5, "threshold_c": -150.0, "ts": 1, "started_ts": 1}  # fmt: skip
    view.handle("coldchain/v1/alarms/C-0003/critical_high/probe1", json.dumps(alarm).encode())
    view.refresh()
    first = out.getvalue()
    row = next(line for line in first.split("\n") if "C-0003" in line and "probe1" in line)
    assert re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", row).split()[:6] == [
        "C-0003", "starting", "probe1", "-149.50", "°C", "CRITICAL"
    ]  # fmt: skip
    view.refresh()
    lines = first.count("\n")
    assert out.getvalue()[len(first) :].startswith(f"\x1b[{lines}F")


def _wait_for(out: io.StringIO, text: str, publish: Callable[[], object]) -> bool:
    deadline = time.monotonic() + 10
    while text not in out.getvalue() and time.monotonic() < deadline:
        publish()
        time.sleep(0.2)
    return text in out.getvalue()


@pytest.mark.integration
def test_the_demos_watcher_survives_payloads_that_are_no_json_object(mosquitto: Mosquitto) -> None:
    """Lists, null, bare strings and bytes that are not UTF-8 are counted; the next message is still shown."""
    crate = f"DEMO-{uuid.uuid4().hex[:8]}"
    out = io.StringIO()
    view = DemoView((crate,), out, False, [])
    watcher = watch(mosquitto.host, mosquitto.port, view)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{crate}")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    status = f"coldchain/v1/crates/{crate}/status"
    bad = [b"[1, 2]", b"null", b'"text"', b"\xff\xfe", b"7"]
    try:
        assert _wait_for(out, f"CRATE  {crate} online", lambda: publisher.publish(status, _status(crate, "online")))
        for topic in (f"coldchain/v1/crates/{crate}/telemetry", status, f"coldchain/v1/alarms/{crate}/r/probe1"):
            for payload in bad:
                publisher.publish(topic, payload, qos=1).wait_for_publish(5)
        assert _wait_for(out, f"CRATE  {crate} offline", lambda: publisher.publish(status, _status(crate, "offline")))
        assert view.ignored == 3 * len(bad)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        watcher.loop_stop()
        watcher.disconnect()


def _status(crate: str, state: str) -> bytes:
    return json.dumps({"v": 1, "crate": crate, "state": state, "ts": 1}).encode()


@pytest.mark.integration
@pytest.mark.cluster
@pytest.mark.fault
def test_cluster_demo_shows_a_lossless_hand_over_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    """``demo --cluster``: three nodes, two gateways; the one holding C-0003's partition is SIGKILLed as C-0003
    warms, the other takes its partitions and stores on, every reading up to then is stored exactly once (counted
    in InfluxDB), and SIGINT leaves no process behind."""
    demo = _run_demo(tmp_path / "data", "HAND-OVER: readings all", 40, "--cluster", "--speed", "5")
    assert demo.code == 0, "\n".join(demo.lines[-40:])
    assert sum("started nats-server" in line for line in demo.lines) == 3
    assert sum(re.match(r"started gateway-[ab] pid", line) is not None for line in demo.lines) == 2
    killed = demo.index("SIGKILLed gateway-", "as C-0003 warms")
    served = demo.index("HAND-OVER: readings stored again")
    counted = demo.index("HAND-OVER: readings all stored exactly once")
    assert killed < served < counted
    moved = r"stored again \d+\.\d s after the gateway's death; partitions [\d, ]+ moved from coldchain-gateway-"
    assert re.search(moved, demo.lines[served])
    assert ", 0 open gaps" in demo.lines[counted]
    assert sum("C-0003 warning_high probe1: active" in line for line in demo.lines) <= 1  # never raised twice
    assert "hand-over lost nothing" in demo.lines
    assert _gone(demo.pids()) == []
