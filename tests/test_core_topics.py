"""Topic identifiers: which names may be crate ids."""

from __future__ import annotations

import pytest

from coldchain.errors import WireFormatError
from coldchain.topics import refuse_reserved_crate, reserved_login, valid_identifier


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("C-0042", False),
        ("staff", False),  # only the namespace with its dot is a login
        ("Staff.alice", False),  # mosquitto logins are case-sensitive: not a staff login
        ("coldchain", False),
        ("staff.alice", True),
        ("coldchain-gateway", True),
        ("coldchain-board", True),
    ],
)
def test_staff_and_service_logins_are_reserved(name: str, reserved: bool) -> None:
    """staff.* and coldchain-* are broker logins of people and services, never crate ids."""
    assert valid_identifier(name)
    assert reserved_login(name) is reserved


def test_a_reserved_crate_topic_is_refused_naming_the_login() -> None:
    """Refusing a staff login's crate topic gives the stable reason reserved_crate and says which login."""
    refuse_reserved_crate("C-0042")
    with pytest.raises(WireFormatError) as caught:
        refuse_reserved_crate("staff.alice")
    assert caught.value.reason == "reserved_crate"
    assert "'staff.alice'" in caught.value.detail
