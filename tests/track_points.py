"""A crate's route as the gateway stores it: two stretches of fixes with a no-fix span between, a tilt, a shock."""

from __future__ import annotations

import time
from pathlib import Path

from board_helpers import RunningBoard, start_board, write_config, write_points


def route_lines(crate: str, now_ms: int) -> list[str]:
    """3 fixes, a lost fix, 2 fixes (Amsterdam towards Leiden), then tilt 42.5° and a 3.40 g shock."""
    t = now_ms - 3_600_000
    fix = [(52.3086, 4.7639), (52.3300, 4.7000), (52.3500, 4.6400), (52.1400, 4.4900), (52.1600, 4.4900)]
    lines = [
        f"position,crate={crate} fix=true,lat={lat},lon={lon},speed_kmh=80.0,satellites=9i {t + k * 300_000}"
        for k, (lat, lon) in enumerate(fix[:3])
    ]
    lines.append(f"position,crate={crate} fix=false,satellites=2i {t + 1_000_000}")
    later = t + 1_500_000
    lines += [
        f"position,crate={crate} fix=true,lat={lat},lon={lon},speed_kmh=12.5,satellites=7i {later + k * 300_000}"
        for k, (lat, lon) in enumerate(fix[3:])
    ]
    lines.append(f"orientation,crate={crate} tilt_deg=42.5 {t + 1_900_000}")
    lines.append(f"shock,crate={crate} shock_g=3.4,tilt_deg=42.5 {t + 1_890_000}")
    return lines


# a profile whose tilt rule allows 45°: the board judges the same 42.5° upright for its crates
LEANING_PROFILE = """
[leaning]
description = "a crate that may lean up to 45°"
[[leaning.rules]]
name = "warm"
kind = "high"
threshold_c = 8.0
severity = "critical"
[[leaning.rules]]
name = "tipped"
kind = "tilt"
severity = "warning"
limit_deg = 45.0
"""


def start_track_board(directory: Path, broker_port: int, influx_url: str, database: str, crate: str) -> RunningBoard:
    """A board on ``database``, which gets the route of ``crate`` (on the default cryo profile), ``crate``-45 (on
    a leaning profile allowing 45°) and ``crate``-fridge (on refrigerated, which has no tilt rule)."""
    now = int(time.time() * 1000)
    write_points(influx_url, database, [line for c in ("", "-45", "-fridge") for line in route_lines(crate + c, now)])
    crates = "".join(
        f'[[crates]]\nid = "{crate}{suffix}"\nprofile = "{profile}"\n'
        for suffix, profile in (("-45", "leaning"), ("-fridge", "refrigerated"))
    )
    config = write_config(directory, broker_port, influx_url, database, crates)
    with (directory / "profiles.toml").open("a") as profiles:
        profiles.write(LEANING_PROFILE)
    return start_board(config)
