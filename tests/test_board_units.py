"""The board's pure parts: passwords, sessions, alarm order, chart spans, configuration."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest
from board_helpers import PASSWORD, PASSWORD_HASH, REPO, alarm_payload

from board.auth import LoginBrake, SessionSigner, hash_password, parse_password_hash, verify_password
from board.broker import BoardEvent
from board.chart import Bucket, chart_data, excursions
from board.config import load_config
from board.hub import Hub, Inbox
from board.influx import bucket_ms_for
from board.state import BoardState
from coldchain.errors import ConfigError, WireFormatError
from coldchain.profiles import parse_profiles
from coldchain.settings.table import Table
from coldchain.wire import CrateStatus, decode_alarm, decode_status

PROFILES = parse_profiles(Table(tomllib.loads((REPO / "config" / "profiles.toml").read_text()), "profiles.toml"))


def test_password_hash_verifies_only_the_right_password() -> None:
    """A scrypt hash accepts its password and refuses any other."""
    assert verify_password(PASSWORD, PASSWORD_HASH)
    assert not verify_password(PASSWORD + "x", PASSWORD_HASH)


def test_password_hashes_are_salted() -> None:
    """The same password hashes differently each time."""
    assert hash_password("same password") != hash_password("same password")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "scrypt$1024$8$1$c2FsdHNhbHRzYWx0c2FsdA$ZGlnZXN0ZGlnZXN0ZGlnZXN0",
        "scrypt$x$8$1$a$b",
        "md5$1$2$3$4$5",
    ],
)
def test_malformed_or_weak_hashes_are_refused(bad: str) -> None:
    """A hash that is not scrypt, malformed or too weak is a ValueError."""
    with pytest.raises(ValueError, match=r"hash|parameters|malformed"):
        parse_password_hash(bad)


def test_session_cookie_names_its_user_until_it_expires() -> None:
    """A fresh cookie names the user; after its lifetime it names nobody."""
    signer = SessionSigner(b"k" * 32, lifetime_s=60)
    cookie = signer.issue("ops", now_s=1000)
    assert signer.user(cookie, now_s=1059) == "ops"
    assert signer.user(cookie, now_s=1061) is None


def test_forged_or_foreign_session_cookie_is_refused() -> None:
    """A cookie with a changed user or signed with another key is no session."""
    signer = SessionSigner(b"k" * 32, lifetime_s=60)
    cookie = signer.issue("ops", now_s=1000)
    _user, expires, mac = cookie.split(".")
    forged = f"YWRtaW4.{expires}.{mac}"  # "admin"
    assert signer.user(forged, now_s=1000) is None
    assert SessionSigner(b"x" * 32, 60).user(cookie, now_s=1000) is None
    assert signer.user("garbage", now_s=1000) is None


def test_csrf_token_belongs_to_one_session() -> None:
    """The CSRF token of one session does not pass for another."""
    signer = SessionSigner(b"k" * 32, lifetime_s=60)
    a, b = signer.issue("ops", 1000), signer.issue("qa", 1000)
    assert signer.csrf_ok(a, signer.csrf(a))
    assert not signer.csrf_ok(b, signer.csrf(a))
    assert not signer.csrf_ok(a, None)


def test_login_brake_blocks_a_name_after_repeated_failures() -> None:
    """Ten failures in the window block the name; the block lifts when the window passes."""
    brake = LoginBrake(limit=10, window_s=300)
    for i in range(10):
        assert not brake.blocked("ops", 1000 + i)
        brake.failed("ops", 1000 + i)
    assert brake.blocked("ops", 1010)
    assert not brake.blocked("qa", 1010)
    assert not brake.blocked("ops", 1310)


def test_status_decodes_and_rejects_a_foreign_crate() -> None:
    """A status message decodes; one naming another crate than its topic is refused."""
    status = decode_status("coldchain/v1/crates/C-1/status", b'{"v":1,"crate":"C-1","state":"offline","ts":5}')
    assert (status.crate, status.state, status.ts) == ("C-1", "offline", 5)
    with pytest.raises(WireFormatError):
        decode_status("coldchain/v1/crates/C-1/status", b'{"v":1,"crate":"C-2","state":"offline","ts":5}')


def test_alarms_are_ordered_by_severity_then_unacknowledged_then_age() -> None:
    """Critical before warning; active before acknowledged; among equals the oldest first."""
    state = BoardState({}, "cryo")
    entries = [
        ("W", "warning", "active", 100),
        ("C-new", "critical", "active", 300),
        ("C-acked", "critical", "acknowledged", 50),
        ("C-old", "critical", "active", 200),
    ]
    for crate, severity, alarm_state, started in entries:
        topic = f"coldchain/v1/alarms/{crate}/r/s"
        payload = alarm_payload(crate, "r", "s", severity=severity, state=alarm_state, started_ts=started)
        alarm = decode_alarm(topic, payload)
        assert alarm is not None
        state.apply_alarm(alarm.key, alarm)
    assert [a["crate"] for a in state.alarms_json()] == ["C-old", "C-new", "C-acked", "W"]


def test_cleared_alarm_leaves_the_open_list_and_awaits_review_until_reviewed() -> None:
    """A cleared state removes the alarm from the open list and its crate's count; unacknowledged, it needs review
    (and stays in the crate's excursions) until its retained state names who reviewed it."""
    state = BoardState({}, "cryo")
    for alarm_state in ("active", "cleared"):
        alarm = decode_alarm("coldchain/v1/alarms/C-1/r/s", alarm_payload("C-1", "r", "s", state=alarm_state))
        assert alarm is not None
        state.apply_alarm(alarm.key, alarm)
    assert state.alarms_json() == []
    assert state.crate_json("C-1")["alarm_count"] == 0
    assert [(a["crate"], a["state"]) for a in state.review_json()] == [("C-1", "cleared")]
    assert state.crate_json("C-1")["review_count"] == 1
    assert state.open_alarm("C-1", "r", "s") is not None  # it may be acknowledged: that is the review
    reviewed = decode_alarm(
        "coldchain/v1/alarms/C-1/r/s", alarm_payload("C-1", "r", "s", state="cleared", acknowledged_by="Ana")
    )
    assert reviewed is not None
    state.apply_alarm(reviewed.key, reviewed)
    assert state.review_json() == []
    assert state.open_alarm("C-1", "r", "s") is None
    assert [(x["state"], x["acknowledged_by"]) for x in state.crate_json("C-1")["excursions"]] == [("cleared", "Ana")]


def test_a_crate_shows_the_shipment_record_its_alarms_carry() -> None:
    """Without board configuration for the crate, its alarm's shipment, origin, destination and product show."""
    state = BoardState({}, "cryo")
    record = {"shipment": "SHP-7", "origin": "Kyoto CPC", "destination": "Leiden LUMC", "product": "iPSC-CM"}
    alarm = decode_alarm("coldchain/v1/alarms/C-1/r/s", alarm_payload("C-1", "r", "s", **record))
    assert alarm is not None
    state.apply_alarm(alarm.key, alarm)
    crate = state.crate_json("C-1")
    assert {key: crate[key] for key in record} == record


def test_excursion_spans_per_rule_from_buckets() -> None:
    """Buckets above a limit make one span per rule, ending where the next bucket is back inside."""
    values = [-170.0, -155.0, -145.0, -158.0, -170.0]
    buckets = [Bucket("probe1", 1000 * i, v, v) for i, v in enumerate(values)]
    spans = excursions(buckets, PROFILES["cryo"], 1000)
    assert spans == [
        {"rule": "warning_high", "severity": "warning", "start": 1000, "end": 4000},
        {"rule": "critical_high", "severity": "critical", "start": 2000, "end": 3000},
    ]


def test_excursion_still_open_at_the_end_runs_one_bucket_past_the_data() -> None:
    """A low excursion that has not ended is shaded to one bucket past the last reading."""
    buckets = [Bucket("probe1", 0, 5.0, 5.0), Bucket("probe1", 60_000, 2.5, 1.5)]
    assert excursions(buckets, PROFILES["refrigerated"], 60_000) == [
        {"rule": "critical_low", "severity": "critical", "start": 60_000, "end": 120_000}
    ]


def test_chart_data_aligns_sensors_on_one_time_axis() -> None:
    """Two sensors with different timestamps share the x column; missing values are null."""
    buckets = [Bucket("a", 1000, -170.0, -171.0), Bucket("b", 2000, -160.5, -160.5)]
    data = chart_data(buckets, PROFILES["cryo"], 1000)
    assert data["x"] == [1.0, 2.0]
    assert [s["label"] for s in data["series"]] == ["a max", "a min", "b max", "b min"]
    assert data["series"][0]["values"] == [-170.0, None]
    assert data["series"][3]["values"] == [None, -160.5]
    assert [b["threshold_c"] for b in data["bands"]] == [-160.0, -150.0]


@pytest.mark.parametrize(
    ("window_ms", "max_points", "bucket_ms"),
    [(3_600_000, 2000, 2000), (60_000, 2000, 1000), (21_600_000, 2000, 11_000), (7 * 86_400_000, 2000, 303_000)],
)
def test_bucket_width_keeps_the_window_under_max_points(window_ms: int, max_points: int, bucket_ms: int) -> None:
    """Buckets are whole seconds, at least one, and wide enough for the point budget."""
    assert bucket_ms_for(window_ms, max_points) == bucket_ms


def test_shipped_example_config_loads() -> None:
    """config/board.toml is valid as shipped."""
    config = load_config(REPO / "config" / "board.toml")
    assert config.http.host == "127.0.0.1"
    assert config.http.auth_mode == "users"
    assert config.crates["C-0042"].shipment == "SH-2026-0193"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[http]\nhost = '0.0.0.0'\n[auth]\nmode = 'proxy'\n", "http.host: auth mode 'proxy' requires a loopback"),
        ("[mqtt]\nprot = 1884\n", "mqtt.prot: is not a known setting"),
        ("[[crates]]\nid = 'C 1'\n", "crates[0].id: 'C 1' must be"),
        ("[[crates]]\nid = 'C-1'\nprofile = 'warm'\n", "crates.C-1.profile: 'warm' is not a known profile"),
        ("[board]\ndefault_profile = 'warm'\n", "board.default_profile: 'warm' is not in"),
        ("[influxdb]\nurl = 'localhost:8086'\n", "influxdb.url: 'localhost:8086' must start with http"),
        ("[mqtt]\npassword_file = 'missing'\n", "mqtt.password_file: cannot read"),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path: Path, extra: str, message: str) -> None:
    """Each bad value stops the board with the file, the dotted key and the problem."""
    (tmp_path / "profiles.toml").write_text((REPO / "config" / "profiles.toml").read_text())
    users = f'[[auth.users]]\nname = "ops"\npassword_hash = "{PASSWORD_HASH}"\n'
    (tmp_path / "board.toml").write_text(users + extra)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "board.toml")
    assert str(tmp_path / "board.toml") in str(caught.value)
    assert message in str(caught.value)


def test_users_mode_without_users_is_refused(tmp_path: Path) -> None:
    """A board that nobody could sign in to does not start."""
    (tmp_path / "profiles.toml").write_text((REPO / "config" / "profiles.toml").read_text())
    (tmp_path / "board.toml").write_text("[auth]\nmode = 'users'\n")
    with pytest.raises(ConfigError, match=r"auth.users: mode 'users' needs at least one"):
        load_config(tmp_path / "board.toml")


def test_hash_password_command_prints_an_entry_the_config_accepts(tmp_path: Path) -> None:
    """`coldchain board hash-password` reads the password from stdin and prints a loadable entry."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "board", "hash-password", "--user", "ana"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    (tmp_path / "profiles.toml").write_text((REPO / "config" / "profiles.toml").read_text())
    (tmp_path / "board.toml").write_text(result.stdout)
    (user,) = load_config(tmp_path / "board.toml").http.users
    assert user.name == "ana"
    assert verify_password("a long enough password", user.password_hash)


def test_hash_password_command_refuses_a_short_password() -> None:
    """A password under ten characters is refused with exit status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "board", "hash-password", "--user", "ana"],
        input="short\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "at least 10 characters" in result.stderr


def test_inbox_hands_events_from_another_thread_to_the_loop_in_order() -> None:
    """Events put from paho's thread are all handled on the event loop, in the order they came."""
    handled: list[int] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(loop, lambda event: handled.append(event.status.ts if event.status else -1))
        events = [BoardEvent("status", status=CrateStatus("C-1", "online", ts)) for ts in range(2000)]
        sender = threading.Thread(target=lambda: [inbox.put(e) for e in events])
        sender.start()
        await asyncio.to_thread(sender.join)
        for _ in range(100):
            if len(handled) == 2000:
                break
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert handled == list(range(2000))


def test_page_that_falls_behind_is_disconnected_not_silently_skipped() -> None:
    """When a page's queue is full it gets a close marker and leaves the hub; other pages keep everything."""

    async def run() -> tuple[list[str | None], int, int]:
        hub = Hub(BoardState({}, "cryo"), page_queue=5)
        slow, fast = hub.open_page(), hub.open_page()
        for ts in range(10):
            hub.apply(BoardEvent("status", status=CrateStatus("C-1", "online", ts)))
            while not fast.queue.empty():
                fast.queue.get_nowait()
        left = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        return left, len(hub.pages), hub.dropped_pages

    left, pages, dropped = asyncio.run(run())
    assert left == [None]
    assert (pages, dropped) == (1, 1)
