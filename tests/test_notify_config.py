"""Notification config: the sample loads, bad values name file and key, channels hear what they should."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from notify_helpers import Receiver, start_receiver, wait_for

from coldchain.alarms.lifecycle import AlarmBook, LifecyclePolicy
from coldchain.alarms.transition import AlarmTransition
from coldchain.errors import ConfigError
from coldchain.settings.table import Table
from gateway.notify.config import Notifier, parse_notify

SAMPLE = Path(__file__).resolve().parent.parent / "gateway" / "notify" / "sample.toml"


def _load(path: Path) -> tuple:  # type: ignore[type-arg]
    root = Table(tomllib.loads(path.read_text()), str(path))
    channels = parse_notify(root.table("notify", required=True), path.parent)
    root.finish()
    return channels


def test_sample_config_loads(tmp_path: Path) -> None:
    """gateway/notify/sample.toml parses: a webhook hearing everything, an e-mail hearing only escalations."""
    sample = tmp_path / "gateway.toml"
    shutil.copy(SAMPLE, sample)
    (tmp_path / "webhook-ops.secret").write_text("abc\n")
    (tmp_path / "smtp.password").write_text("pw\n")
    ops, duty = _load(sample)
    assert (ops.name, ops.webhook.secret, ops.changes, ops.outbox) == (
        "ops", b"abc", ("active", "acknowledged", "cleared", "escalated"), tmp_path / "outbox-webhook-ops.sqlite",
    )  # fmt: skip
    assert (duty.changes, duty.late, duty.email.starttls, duty.email.password) == (("escalated",), False, True, "pw")


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ('[[notify.webhook]]\nname="a"\nurl="ftp://x"\nsecret_file="s"', "notify.webhook[0].url"),
        ('[[notify.webhook]]\nname="a"\nurl="http://x"', "notify.webhook[0].secret_file: is required"),
        (
            '[[notify.webhook]]\nname="a"\nurl="http://x"\nsecret_file="nope"',
            "notify.webhook[0].secret_file: cannot read",
        ),
        ('[[notify.email]]\nname="a"\nhost="h"\nfrom="a@b"\nto=["x"]', "notify.email[0].to"),
        ('[[notify.email]]\nname="a"\nhost="h"\nfrom="a@b"\nto=["x@y"]\nchanges=["paged"]', "notify.email[0].changes"),
        ('[[notify.email]]\nname="a"\nhost="h"\nfrom="a@b"\nto=["x@y"]\nretries=3', "notify.email[0].retries: is not"),
    ],
)
def test_bad_channel_names_file_and_key(tmp_path: Path, channel: str, message: str) -> None:
    """A bad channel value raises a ConfigError naming the file and the key."""
    (tmp_path / "s").write_text("secret")
    path = tmp_path / "gateway.toml"
    path.write_text(channel)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        _load(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_escalation_goes_to_the_second_channel_and_late_alarms_only_where_wanted(tmp_path: Path) -> None:
    """The first channel gets every change; the escalation-only channel only the escalation; neither gets late pages."""
    receiver_all, receiver_escalated = Receiver(), Receiver()
    servers = [start_receiver(receiver_all), start_receiver(receiver_escalated)]
    (tmp_path / "s").write_text("secret")
    config = tmp_path / "gateway.toml"
    all_port, escalated_port = (s.server_address[1] for s in servers)
    config.write_text(
        f'[[notify.webhook]]\nname="ops"\nurl="http://127.0.0.1:{all_port}/"\nsecret_file="s"\nretry_min_s=0.02\n'
        f'[[notify.webhook]]\nname="boss"\nurl="http://127.0.0.1:{escalated_port}/"\nsecret_file="s"\n'
        'changes=["escalated"]\nlate=false\n'
    )
    notifier = Notifier(_load(config)).start()
    book = AlarmBook(LifecyclePolicy(escalate_after_s={"critical": 60}, late_after_s=60))
    try:
        events = book.apply("C-1", AlarmTransition("r", "high", "critical", "p", "active", 0, 0), 0)
        events += book.tick(60_000)
        events += book.apply("C-2", AlarmTransition("r", "high", "critical", "p", "active", 0, 0), 10**7)
        events += book.apply("C-2", AlarmTransition("r", "high", "critical", "p", "cleared", 10, 0), 10**7)
        routed = [notifier.publish(e) for e in events]
        assert routed == [["ops"], ["ops", "boss"], ["ops"], ["ops"]]
        assert wait_for(lambda: len(receiver_all.accepted()) == 4 and len(receiver_escalated.accepted()) == 1)
    finally:
        notifier.stop()
        for server in servers:
            server.shutdown()
    assert receiver_escalated.accepted()[0][0]["Idempotency-Key"] == "C-1/r/p/0/escalated"
