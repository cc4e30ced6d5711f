"""The board's reader of InfluxDB's track answer is total: a track the page can draw, or the reader's own error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from board.influx import HistoryError
from board.track import parse_track

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
COLUMNS = ["time", "fix", "lat", "lon", "speed_kmh", "satellites", "tilt_deg", "shock_g"]
SERIES = st.fixed_dictionaries(
    {"columns": st.just(COLUMNS)},
    optional={"values": st.lists(st.lists(VALUES, min_size=8, max_size=8), max_size=4)},
)
RESULTS = st.lists(
    st.fixed_dictionaries({}, optional={"error": VALUES, "series": st.lists(SERIES | VALUES, max_size=2)}) | VALUES,
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results=RESULTS, tipped_deg=st.none() | st.floats(0.0, 180.0))
def test_track_reader_is_total(results: list[Any], tipped_deg: float | None) -> None:
    """Whatever InfluxDB answers, the track is plain JSON with finite, in-range positions, or a HistoryError."""
    try:
        track = parse_track({"results": results}, tipped_deg)
    except HistoryError:
        return
    json.dumps(track, allow_nan=False)
    for segment in track["segments"]:
        assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for _, lat, lon in segment)
