"""How a board's per-sensor sentences group into ticks, and how local checks react (pure, no I/O)."""

from __future__ import annotations

import logging

import pytest

from coldchain.alarms.stuck import StuckDetector
from coldchain.sentences import TemperatureSentence
from coldchain.wire import Reading
from edge.probe_checks import ProbeChecks
from edge.probes.ticks import TickAssembler


def _t(sensor: str, value: float = -170.0, status: str = "OK") -> TemperatureSentence:
    return TemperatureSentence(sensor, value, status)


def test_tick_completes_when_every_sensor_reported() -> None:
    """The tick is done at the last configured sensor, stamped at its first sentence."""
    ticks = TickAssembler(("a", "b"), 500)
    assert ticks.feed(_t("a"), 1000, 10) == []
    (done,) = ticks.feed(_t("b"), 1003, 13)
    assert (done.wall_ms, sorted(done.readings)) == (1000, ["a", "b"])


def test_repeated_sensor_closes_the_tick_early() -> None:
    """A sensor reporting twice means a new period began: the open tick is sent without the silent sensor."""
    ticks = TickAssembler(("a", "b"), 500)
    ticks.feed(_t("a", -170.0), 1000, 10)
    (done,) = ticks.feed(_t("a", -169.0), 2000, 1010)
    assert done.readings == {"a": Reading("a", -170.0)}


def test_tick_times_out() -> None:
    """An incomplete tick is sent once the timeout passes after its first sentence."""
    ticks = TickAssembler(("a", "b"), 500)
    ticks.feed(_t("a"), 1000, 10)
    assert ticks.expire(509) is None
    expired = ticks.expire(510)
    assert expired is not None
    assert list(expired.readings) == ["a"]


def test_board_clock_stamps_the_next_tick() -> None:
    """A CCTIM closes the open tick and stamps the next one."""
    ticks = TickAssembler(("a",), 500)
    assert ticks.clock(1_795_000_000_000) is None
    (done,) = ticks.feed(_t("a"), 5, 5)
    assert done.board_ts == 1_795_000_000_000


def test_bursts_read_together_get_distinct_stamps() -> None:
    """Bursts read in one go (the Pi fell behind) arrive in the same millisecond: each tick is stamped a
    millisecond after the previous one, or InfluxDB would keep one reading of them (same series and time)."""
    ticks = TickAssembler(("a",), 500)
    stamps = [(t.wall_ms, t.mono_ms) for _ in range(3) for t in ticks.feed(_t("a"), 1000, 10)]
    assert stamps == [(1000, 10), (1001, 11), (1002, 12)]
    (later,) = ticks.feed(_t("a"), 1001, 11)  # the clocks moved on less than the nudges did
    assert (later.wall_ms, later.mono_ms) == (1003, 13)
    (caught_up,) = ticks.feed(_t("a"), 2000, 1010)
    assert (caught_up.wall_ms, caught_up.mono_ms) == (2000, 1010)


def test_a_wall_clock_stepped_back_is_not_nudged_forward() -> None:
    """NTP stepping the clock back: the next tick says the clock's time, not the previous tick's plus one."""
    ticks = TickAssembler(("a",), 500)
    ticks.feed(_t("a"), 5000, 10)
    (stepped,) = ticks.feed(_t("a"), 1000, 10)
    assert (stepped.wall_ms, stepped.mono_ms) == (1000, 11)


def test_fault_status_becomes_null_value_with_fault() -> None:
    """A non-OK status is carried as value None and the fault."""
    ticks = TickAssembler(("a",), 500)
    (done,) = ticks.feed(_t("a", 0.0, "SHORT"), 1, 1)
    assert done.readings["a"] == Reading("a", None, "SHORT")


@pytest.mark.parametrize(
    ("values", "changes"),
    [
        ([1.0, 1.0, 1.0], [None, None, True]),
        ([1.0, 1.0, 1.0, 1.0, 2.0], [None, None, True, None, False]),
        ([1.0, 2.0, 1.0, 2.0], [None, None, None, None]),
    ],
)
def test_stuck_detector(values: list[float], changes: list[bool | None]) -> None:
    """Three equal values in a row are stuck; the first different one ends it."""
    detector = StuckDetector(3)
    assert [detector.feed(v) for v in values] == changes


def test_probe_fault_is_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    """OPEN is logged when it starts, not on every sample, and its end is logged too."""
    watch = ProbeChecks(None, 0)
    with caplog.at_level(logging.INFO, logger="edge.probe_checks"):
        for i in range(3):
            watch.feed(i, 1000 + i, (Reading("p", None, "OPEN"),))
        watch.feed(3, 1003, (Reading("p", -170.0),))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "probe p reports OPEN: check the probe and its wiring",
        "probe p reads again (-170.00 °C) after OPEN",
    ]
