"""Config checking: shipped files load, bad values name file, key and problem."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from coldchain.errors import ConfigError
from coldchain.profiles import parse_profiles
from coldchain.settings.table import Table

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_shipped_profiles_load() -> None:
    """config/profiles.toml parses and carries the cryo limits of the product."""
    profiles = parse_profiles(Table(tomllib.loads((CONFIG / "profiles.toml").read_text()), "profiles.toml"))
    assert {"cryo", "dry_ice", "frozen", "refrigerated", "ambient"} <= profiles.keys()
    cryo = {rule.name: rule for rule in profiles["cryo"].rules}
    assert (cryo["critical_high"].threshold_c, cryo["critical_high"].severity) == (-150.0, "critical")
    assert cryo["warning_high"].threshold_c == -160.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[cryo]\n[[cryo.rules]]\nname="x"\nkind="hot"\nthreshold_c=1\nseverity="critical"', "cryo.rules[0].kind"),
        ('[cryo]\n[[cryo.rules]]\nname="x"\nkind="high"\nthreshold_c="cold"\nseverity="critical"', "must be a number"),
        (
            '[cryo]\n[[cryo.rules]]\nname="x"\nkind="high"\nthreshold_c=1\nseverity="critical"\ndelay=5',
            "cryo.rules[0].delay",
        ),
        ('[cryo]\n[[cryo.rules]]\nkind="high"\nthreshold_c=1\nseverity="critical"', "name: is required"),
        ("[cryo]\ndescription='no rules'", "at least one rule"),
    ],
)
def test_bad_profile_names_file_key_and_problem(text: str, message: str) -> None:
    """Each bad profile value raises a ConfigError naming the file and the key."""
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        parse_profiles(Table(tomllib.loads(text), "my-profiles.toml"))
    assert str(caught.value).startswith("my-profiles.toml: ")


def test_core_imports_without_io_libraries() -> None:
    """Every module of the pure core imports with paho, serial, influxdb_client and gpiozero blocked."""
    code = (
        "import sys\n"
        "for name in ('paho', 'serial', 'influxdb_client', 'gpiozero', 'socket', 'sqlite3'):\n"
        "    sys.modules[name] = None\n"
        "import importlib, pkgutil, coldchain\n"
        "for module in pkgutil.walk_packages(coldchain.__path__, 'coldchain.'):\n"
        "    importlib.import_module(module.name)\n"
        "deep = {'coldchain.alarms.engine', 'coldchain.record.verdict', 'coldchain.wire.alarm_view'}\n"
        "assert deep <= sys.modules.keys()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
