"""A crate's hand-over between gateways, in memory: what one saves, the next resumes; a damaged save harms nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_helpers import PROFILES, telemetry
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import GatewayConfig, load_config
from gateway.ingest import Batch, Ingest

NOW_MS = 1_800_000_000_000


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    """A minimal gateway config (cryo by default), alarms announced at once."""
    path = tmp_path_factory.mktemp("cfg") / "gw.toml"
    path.write_text(f'[profiles]\nfile = {json.dumps(str(PROFILES))}\ndefault = "cryo"\n[alarms]\nhold_s = 0\n')
    return load_config(path)


def _feed(ingest: Ingest, crate: str, seqs: range, value: float) -> tuple[list[str], Batch]:
    """Handle readings ``seqs`` of ``crate`` (one a second, live); the alarm states published, and the batch."""
    batch, states = Batch(), []
    for seq in seqs:
        payload = telemetry(crate, seq, value, ts=NOW_MS - 60_000 + seq * 1000)
        for topic, body, _ in ingest.handle((f"coldchain/v1/crates/{crate}/telemetry", payload, seq + 1, 0), batch,
                                            NOW_MS):  # fmt: skip
            if "/alarms/" in topic and "warning_high" in topic:
                states.append(json.loads(body)["state"])
    return states, batch


def test_the_next_owner_resumes_gaps_and_alarms(config: GatewayConfig) -> None:
    """Gateway A handles a crate into an excursion with a gap open and saves per crate; B adopts the snapshot:
    the gap stays open (its late seq fills it), the excursion is not raised again, and B clears it."""
    crate = "C-HAND"
    a = Ingest(config, crate_books=True)
    states, _ = _feed(a, crate, range(3), -170.0)
    more, batch = _feed(a, crate, range(5, 8), -155.0)  # 3 and 4 missing: a gap opens
    assert states + more == ["active"]
    a.close(batch, with_snapshots=True)
    (saved_crate, snapshot), *rest = batch.snapshots
    assert (saved_crate, rest) == (crate, [])  # per crate, the book's part inside: no whole-book entry
    b = Ingest(config, crate_books=True)
    b.adopt(crate, json.loads(json.dumps(snapshot)), NOW_MS)  # as it travels through the bucket
    assert b.crates[crate].seqs.stored_through == 2
    assert _feed(b, crate, range(3, 5), -155.0)[0] == []  # late, filling the gap: not judged again
    assert b.crates[crate].seqs.stored_through == 7
    assert _feed(b, crate, range(8, 10), -155.0)[0] == []  # still in excursion: raised once only
    assert _feed(b, crate, range(10, 12), -170.0)[0] == ["cleared"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
snapshot_keys = st.sampled_from(["profile", "seqs", "last_ts", "seen", "alarms", "book"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(snapshot_keys | st.text(max_size=6), json_values, max_size=7))
def test_a_damaged_snapshot_leaves_no_half_adopted_crate(config: GatewayConfig, saved: dict[str, Any]) -> None:
    """Whatever the bucket holds for a crate, adopting it either works or raises with the crate forgotten whole."""
    ingest = Ingest(config, crate_books=True)
    try:
        ingest.adopt("C-DMG", saved, NOW_MS)
    except Exception:  # any failure is acceptable: what it leaves behind is what is checked
        assert "C-DMG" not in ingest.crates
        assert not ingest.alarming.watches("C-DMG")
        assert ingest.alarming.crate_book("C-DMG") == {"alarms": [], "held": {}, "recent": {}}
