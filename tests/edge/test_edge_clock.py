"""A Pi without RTC boots in 1970: readings are held, then restamped from monotonic time once the clock is set."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from edge_helpers import Listen, RunAgent, agent_config, wait_until

from cli.services import Mosquitto
from edge.clock import EARLIEST_PLAUSIBLE_MS, Clock

pytestmark = pytest.mark.integration

OFFSET = EARLIEST_PLAUSIBLE_MS + 86_400_000  # wall = monotonic + OFFSET once "NTP" has answered


class Wall:
    """A wall clock that reads 1970-ish until set."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self) -> int:
        mono = time.monotonic_ns() // 1_000_000
        return mono + OFFSET if self.set else 5_000 + mono % 100_000


def _mono() -> int:
    return time.monotonic_ns() // 1_000_000


def test_unset_clock_holds_then_restamps_from_monotonic_time(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """Samples stamped before the build date wait, then go out with ts = mono + offset, flagged."""
    crate = f"{crate_prefix}-T"
    wall = Wall()
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/#"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto), clock=Clock(wall, _mono, "boot-A"))
    wait_until(lambda: run.agent.link.connected, 10, "connected")
    monos = []
    for value in (-170.0, -169.0):
        monos.append(_mono())
        run.agent.inbox.put(_sample(wall(), monos[-1], value))
    wait_until(lambda: len(run.agent.spool) == 2, 5, "2 held")
    time.sleep(0.2)
    assert listener.telemetry() == []
    wall.set = True
    got = wait_until(lambda: len(listener.telemetry()) == 2 and listener.telemetry(), 10, "released")
    assert [m["ts"] for m in got] == [mono + OFFSET for mono in monos]
    assert all(m["ts_corrected"] is True for m in got)
    assert [m["seq"] for m in got] == [0, 1]
    event = wait_until(lambda: [e for e in listener.on("/events") if e["event"] == "clock_corrected"], 5, "event")
    assert (event[0]["count"], event[0]["uncertain"]) == (2, 0)


def test_held_reading_from_an_earlier_boot_is_flagged_uncertain(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """A held sample whose monotonic time belongs to another boot is released with ts_uncertain."""
    crate = f"{crate_prefix}-B"
    config = agent_config(tmp_path, crate, mosquitto)
    first = run_agent(config, clock=Clock(Wall(), _mono, "boot-A"))
    first.agent.inbox.put(_sample(5_000, _mono(), -170.0))
    wait_until(lambda: len(first.agent.spool) == 1, 5, "held")
    first.stop()
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/telemetry"])
    wall = Wall()
    wall.set = True
    run_agent(config, clock=Clock(wall, _mono, "boot-B"))
    got = wait_until(listener.telemetry, 10, "released")
    assert got[0]["ts_uncertain"] is True
    assert got[0]["ts"] == 5_000


def _sample(ts: int, mono: int, value: float) -> object:
    from coldchain.wire import Reading
    from edge.events import Sample

    return Sample(ts, mono, (Reading("probe1", value),))


def test_events_from_an_unset_clock_are_held_and_restamped(
    tmp_path: Path, mosquitto: Mosquitto, crate_prefix: str, listen: Listen, run_agent: RunAgent
) -> None:
    """A lid event stamped in 1970 waits, then goes out with ts from monotonic time, flagged."""
    from edge.events import Notice

    crate = f"{crate_prefix}-V"
    wall = Wall()
    listener = listen(mosquitto, [f"coldchain/v1/crates/{crate}/events"])
    run = run_agent(agent_config(tmp_path, crate, mosquitto), clock=Clock(wall, _mono, "boot-A"))
    wait_until(lambda: run.agent.link.connected, 10, "connected")
    mono = _mono()
    run.agent.inbox.put(Notice("lid_open", wall(), mono))
    time.sleep(0.2)
    assert listener.on("/events") == []
    wall.set = True
    got = wait_until(lambda: listener.on("/events"), 10, "released")
    assert (got[0]["event"], got[0]["ts"], got[0]["ts_corrected"]) == ("lid_open", mono + OFFSET, True)
