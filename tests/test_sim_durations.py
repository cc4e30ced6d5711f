"""``Table.duration``: the human durations scenario files use ("90s", "15m", "72h", "3d")."""

from __future__ import annotations

import re

import pytest

from coldchain.errors import ConfigError
from coldchain.settings.table import Table


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("1.5h", 5400.0), ("3d", 259_200.0), ("0s", 0.0)],
)
def test_durations_convert_to_seconds(raw: object, seconds: float) -> None:
    """Numbers are seconds; strings carry a unit s, m, h or d."""
    assert Table({"at": raw}, "s.toml").duration("at") == seconds


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("3 days", "'3 days' is not a duration"),
        ("h", "'h' is not a duration"),
        ("nanh", "not a finite duration"),
        (True, "must be a duration"),
        ("-5m", "below the minimum 0"),
    ],
)
def test_bad_durations_name_file_key_and_problem(raw: object, message: str) -> None:
    """A bad duration raises a ConfigError naming the file, the key and the problem."""
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Table({"at": raw}, "s.toml", "faults[0]").duration("at", minimum=0)
    assert str(caught.value).startswith("s.toml: faults[0].at: ")
