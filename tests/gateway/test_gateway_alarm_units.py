"""The gateway's alarm, shipment and security wiring without a broker: config, lost seqs, routing, signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_helpers import PROFILES, TS, telemetry

from coldchain.errors import ConfigError
from coldchain.signing import sign
from gateway.alarming import Alarming
from gateway.authenticity import Authenticity
from gateway.config import GatewayConfig, SecurityConfig, load_config
from gateway.ingest import Batch, Ingest
from gateway.sequence import SeqTracker

NOW = TS + 10_000


def _config(tmp_path: Path, extra: str = "") -> GatewayConfig:
    path = tmp_path / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n{extra}')
    return load_config(path)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[security]\nrequire_signatures = true\n", "security.require_signatures"),
        ('[security]\nkeys_dir = "no-such-dir"\n', "security.keys_dir"),
        ("[alarms]\nescalate_after_s = { urgent = 60 }\n", "alarms.escalate_after_s.urgent"),
        ('[crates."C-1"]\nshipment = "SHP 7"\n', "crates.C-1.shipment"),
    ],
)
def test_bad_alarm_and_security_settings_name_their_key(tmp_path: Path, extra: str, key: str) -> None:
    """Each bad setting is refused at start-up with an error naming the key."""
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, extra)
    assert info.value.key == key


def test_shipment_of_a_crate_tags_its_readings_and_alarms(tmp_path: Path) -> None:
    """``[crates."C-1"] shipment`` puts shipment=SHP-7 on its temperature points and its alarm points."""
    ingest, batch = Ingest(_config(tmp_path, '[crates."C-1"]\nshipment = "SHP-7"\n')), Batch()
    payload = telemetry("C-1", 1, value=-140.0, ts=NOW)
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", payload, 1, 0), batch, NOW)
    assert batch.lines[0].startswith("temperature,crate=C-1,profile=cryo,sensor=probe1,shipment=SHP-7 ")
    alarms = [line for line in batch.lines if line.startswith("alarm,")]
    assert alarms
    assert all(",shipment=SHP-7" in line for line in alarms)


@pytest.mark.parametrize(
    ("seen", "lost", "stored_through", "gaps"),
    [
        ([1, 2], (3, 5), 5, [(3, 5, 0, 3, "lost")]),  # dropped before sending: settled at once
        ([1, 2, 6], (3, 5), 6, [(3, 5, 0, 3, "lost")]),  # the gap the jump opened is settled
        ([1, 2, 8], (3, 5), 5, [(3, 7, 2, 3, "open")]),  # 6..7 are still awaited
        ([1, 2], (5, 6), 2, [(3, 6, 2, 2, "open")]),  # 3..4 may still come
    ],
)
def test_seqs_a_crate_declares_lost_stop_holding_back_stored_through(
    seen: list[int], lost: tuple[int, int], stored_through: int, gaps: list[tuple[int, int, int, int, str]]
) -> None:
    """SeqTracker.lose settles what the crate dropped and keeps waiting for the rest."""
    tracker = SeqTracker()
    for seq in seen:
        tracker.accept(seq, TS + seq)
    changed = tracker.lose(*lost, TS + 100)
    assert [(g.first, g.last, g.remaining, g.lost, g.state) for g in changed] == gaps
    assert tracker.stored_through == stored_through


def test_unreadable_status_is_rejected_and_acked(tmp_path: Path) -> None:
    """A status payload that is not JSON is rejected with reason json; the delivery is still in the batch."""
    ingest, batch = Ingest(_config(tmp_path)), Batch()
    ingest.handle(("coldchain/v1/crates/C-1/status", b"online!", 1, 0), batch, NOW)
    assert ingest.rejects["json"] == 1
    assert len(batch.deliveries) == 1
    assert any(line.startswith("rejected,crate=C-1,reason=json ") for line in batch.lines)


def test_status_before_telemetry_does_not_fix_the_profile_the_crate_reports(tmp_path: Path) -> None:
    """A crate's online status arrives first; its telemetry naming dry_ice still gets the dry_ice rules."""
    ingest, batch = Ingest(_config(tmp_path)), Batch()
    status = json.dumps({"v": 1, "crate": "C-1", "state": "online", "ts": NOW}).encode()
    published = ingest.handle(("coldchain/v1/crates/C-1/status", status, 1, 0), batch, NOW)
    payload = telemetry("C-1", 1, value=-59.0, ts=NOW, profile="dry_ice")
    published = [*published, *ingest.handle(("coldchain/v1/crates/C-1/telemetry", payload, 2, 0), batch, NOW)]
    assert ingest.alarming.engine.monitors["C-1"].profile.name == "dry_ice"
    assert [t for t, _, _ in published] == ["coldchain/v1/alarms/C-1/critical_high/probe1"]


def test_forged_message_does_not_settle_its_seq(tmp_path: Path) -> None:
    """A message signed with the wrong key is refused and its seq stays open for the genuine one."""
    (tmp_path / "C-1.key").write_text(("11" * 32) + "\n")
    authenticity = Authenticity(SecurityConfig(keys_dir=tmp_path, require_signatures=True))
    ingest, batch = Ingest(_config(tmp_path), authenticity=authenticity), Batch()
    body = json.loads(telemetry("C-1", 1, ts=NOW))
    body["sig"] = sign(body, b"\x22" * 32)
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", json.dumps(body).encode(), 1, 0), batch, NOW)
    assert ingest.rejects["signature"] == 1
    body["sig"] = sign(body, b"\x11" * 32)
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", json.dumps(body).encode(), 2, 0), batch, NOW)
    assert sum(line.startswith("temperature,") for line in batch.lines) == 1


def test_deleted_retained_status_is_no_message(tmp_path: Path) -> None:
    """An empty status payload (a retained status deleted) is acknowledged without a rejection."""
    ingest, batch = Ingest(_config(tmp_path)), Batch()
    ingest.handle(("coldchain/v1/crates/C-1/status", b"", 1, 0), batch, NOW)
    assert not ingest.rejects
    assert (len(batch.deliveries), batch.lines) == (1, [])


def test_start_delay_is_dated_by_a_shipments_first_switch_on_only(tmp_path: Path) -> None:
    """The first powered_on starts the start delay; a reboot mid-shipment does not silence the probes again;
    a new shipment (seq numbered afresh) is dated by its own switch-on."""
    ingest, batch = Ingest(_config(tmp_path, '[crates."C-1"]\nprofile = "refrigerated"\n')), Batch()

    def send(seq: int, ts: int, powered_on: int) -> None:
        payload = telemetry("C-1", seq, value=5.0, ts=ts, powered_on=powered_on)
        ingest.handle(("coldchain/v1/crates/C-1/telemetry", payload, seq, 0), batch, ts + 100)

    send(10, TS, powered_on=TS - 1000)
    monitor = ingest.alarming.engine.monitors["C-1"]
    assert monitor.switched_on_ts == TS - 1000
    send(11, TS + 3_600_000, powered_on=TS + 3_599_000)  # brown-out an hour in
    assert monitor.switched_on_ts == TS - 1000
    assert not monitor.settling(TS + 3_600_000)
    send(1, TS + 7_200_000, powered_on=TS + 7_190_000)  # a new shipment
    assert ingest.alarming.engine.monitors["C-1"].switched_on_ts == TS + 7_190_000


def test_stale_data_does_not_count_while_the_gateway_cannot_hear(tmp_path: Path) -> None:
    """While the gateway holds the broker's window (InfluxDB away) no reading can arrive: stale data counts
    only from when it can hear again, so a database outage does not raise stale on every crate."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('[p]\ndescription = "t"\n[[p.rules]]\nname = "stale"\nkind = "stale"\nseverity = "warning"\n'
                        "after_s = 60\n")  # fmt: skip
    (tmp_path / "gw.toml").write_text(f'[profiles]\nfile = {json.dumps(str(profiles))}\ndefault = "p"\n')
    published: list[str] = []
    config = load_config(tmp_path / "gw.toml")
    alarming = Alarming(config, publish=lambda topic, payload, retain: published.append(topic))
    ingest, batch, deaf = Ingest(config, alarming), Batch(), [False]
    status = json.dumps({"v": 1, "crate": "C-1", "state": "online", "ts": NOW}).encode()
    ingest.handle(("coldchain/v1/crates/C-1/status", status, 1, 0), batch, NOW)
    ingest.handle(("coldchain/v1/crates/C-1/telemetry", telemetry("C-1", 1, ts=NOW), 2, 0), batch, NOW)

    def tick(at_s: float) -> None:
        alarming.tick(at_s, NOW + int(at_s * 1000), deaf[0])

    deaf[0] = True
    for second in range(1, 600, 10):  # ten minutes of a database outage
        tick(second)
    deaf[0] = False
    tick(630)  # 40 s after it ended: not yet
    assert published == []
    tick(700)  # 60 s and more of silence the gateway could have heard
    assert published == ["coldchain/v1/alarms/C-1/stale/crate"]


def test_two_gaps_revealed_in_the_same_millisecond_keep_a_point_each() -> None:
    """A crate that drops seqs twice in a row says so in two events of one millisecond: two gaps, two times
    (a gap point's identity is crate + time), also after a restore."""
    tracker = SeqTracker()
    for seq in (0, 1, 2):
        tracker.accept(seq, TS + seq)
    (first,) = tracker.lose(3, 3, TS + 100)
    (second,) = tracker.lose(4, 12, TS + 100)
    assert (first.ts, first.lost, second.ts, second.lost) == (TS + 100, 1, TS + 101, 9)
    restored = SeqTracker()
    restored.restore(json.loads(json.dumps(tracker.snapshot())))
    _, gap = restored.accept(20, TS + 101)
    assert gap is not None
    assert gap.ts == TS + 102
