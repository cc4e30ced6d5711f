"""The simulated board's accelerometer ($CCTLT) and the tipped shipper's physics, from scenario files."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
from sim_scenarios import EPOCH_MS, load, run

from coldchain.errors import ConfigError
from coldchain.sentences import TiltSentence, parse_sentence
from firmware_sim.board import emit_until
from firmware_sim.scenario import parse_scenario

DAY_S = 86_400.0


def _tilts(name: str, start_s: float, end_s: float) -> list[tuple[float, TiltSentence]]:
    board = load(name).board(seed=1, epoch_ms=EPOCH_MS)
    out = []
    for t, line in emit_until(board, end_s):
        sentence = parse_sentence(line)
        if t >= start_s and isinstance(sentence, TiltSentence):
            out.append((t, sentence))
    return out


def test_board_reports_upright_then_tipped_with_one_jolt() -> None:
    """cryo-tipped-jolt: 0.0 degrees until 24 h, then 88.5; the 3.5 g shock only in the burst after the drop."""
    tilts = _tilts("cryo-tipped-jolt", DAY_S - 180, DAY_S + 180)
    assert [(t - DAY_S, s) for t, s in tilts] == [
        (-180.0, TiltSentence(0.0, 0.0)),
        (-120.0, TiltSentence(0.0, 0.0)),
        (-60.0, TiltSentence(0.0, 0.0)),
        (0.0, TiltSentence(88.5, 3.5)),
        (60.0, TiltSentence(88.5, 0.0)),
        (120.0, TiltSentence(88.5, 0.0)),
    ]


def test_board_without_an_accelerometer_sends_no_tilt() -> None:
    """cryo-tipped has no [board] accelerometer: the same tip changes the physics but sends no $CCTLT."""
    assert _tilts("cryo-tipped", 0.0, DAY_S + 600) == []


def test_tipped_shipper_warms_into_critical_on_day_four_and_upright_never() -> None:
    """The tip reported by the accelerometer is the one the LN2 model runs 4x faster on."""
    scenario = load("cryo-tipped-jolt")
    outcome = run(scenario)
    assert 3 * 24 < (outcome.first("critical_high").ts - EPOCH_MS) / 3_600_000 < 4 * 24
    assert run(dataclasses.replace(scenario, events=(), orientation=())).raised() == []  # upright: no tilt either


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ('kind = "lid_open"\nat = "1h"\ntilt_deg = 90.0', "only tip and upright events take tilt_deg"),
        ('kind = "tip"\nat = "1h"\ntilt_deg = 10.0', "a tip leaves the shipper at 45° or more"),
        ('kind = "upright"\nat = "1h"\ntilt_deg = 60.0', "an upright under 45°"),
        ('kind = "refill"\nat = "1h"\nshock_g = 2.0', "only tip and upright events take shock_g"),
    ],
)
def test_orientation_keys_that_contradict_the_event_are_refused(event: str, message: str) -> None:
    """An angle the physics' tipped/upright flag would not match, or a jolt on a non-tip event: one clear error."""
    text = 'name = "x"\nprofile = "cryo"\nduration = "1d"\n[shipper]\nkind = "dry_ice"\n[[probes]]\nname = "p"\n'
    with pytest.raises(ConfigError, match=message):
        parse_scenario(tomllib.loads(text + f"[[events]]\n{event}\n"), "x.toml")
