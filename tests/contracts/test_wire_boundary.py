"""Programs never serialise or parse a wire message themselves: the core's wire package does, in one place.

Every ``json`` call left in edge/, gateway/, board/ and cli/ is named here with why it is no MQTT
message of the README's wire tables.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("edge", "gateway", "board", "cli")
JSON_CALLS = {"dumps", "loads", "dump", "load"}

# (module, enclosing function) -> why its json call is not a wire message
ALLOWED = {
    ("gateway/health.py", "Health._write_health"): "the self-monitoring health file",
    ("gateway/health.py", "read_health"): "the self-monitoring health file",
    ("gateway/notify/outbox.py", "Outbox.add"): "the notification outbox's SQLite rows",
    ("gateway/notify/outbox.py", "Outbox.head"): "the notification outbox's SQLite rows",
    ("gateway/notify/webhook.py", "WebhookChannel.send"): "the webhook's HTTP body (a notification channel)",
    ("gateway/crate_kv.py", "CrateKv.load"): "a crate's state in the cluster's key-value bucket",
    ("gateway/crate_kv.py", "CrateKv.save"): "a crate's state in the cluster's key-value bucket",
    ("gateway/statefile.py", "StateFile.load"): "the state file",
    ("gateway/statefile.py", "StateFile.save"): "the state file",
    ("board/hub.py", "sse"): "the board's HTTP event stream",
    ("board/hub.py", "Hub._check_showable"): "the board's HTTP event stream (can the page parse it)",
    ("cli/alerts.py", "_follow"): "--json output for scripts: an alarm the core decoded, printed",
    ("cli/alerts.py", "main"): "--json output for scripts: alarms the core decoded, printed",
    ("cli/cluster_services.py", "NatsNode.healthy"): "the NATS monitoring HTTP API",
    ("cli/cluster_services.py", "NatsNode.client_names"): "the NATS monitoring HTTP API",
    ("cli/cluster_services.py", "NatsNode.meta_leader"): "the NATS monitoring HTTP API",
    ("cli/demo_setup.py", "DataDir.read"): "the demo's data directory marker file",
    ("cli/demo_setup.py", "DataDir.write"): "the demo's data directory marker file",
    ("cli/demo_setup.py", "DataDir.write_influx_toml"): "a TOML string in a config snippet",
    ("cli/demo_setup.py", "write_gateway_config"): "a TOML string in a config snippet",
    ("cli/demo_setup.py", "write_agent_config"): "a TOML string in a config snippet",
    ("cli/demo_setup.py", "write_board_config"): "a TOML string in a config snippet",
    ("cli/provision.py", "_toml_string"): "a TOML string in a generated config",
    ("cli/report_text.py", "write_text"): "the report's JSON output",
}


def _is_json_call(node: ast.AST) -> bool:
    """True for ``json.dumps(...)``, ``json.loads(...)``, ``json.dump(...)`` and ``json.load(...)``."""
    func = node.func if isinstance(node, ast.Call) else None
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "json"
        and func.attr in JSON_CALLS
    )


def _json_uses(path: Path) -> set[tuple[str, str]]:
    """(module, enclosing function) of every json call or ``from json import`` in ``path``."""
    module = path.relative_to(ROOT).as_posix()
    found: set[tuple[str, str]] = set()

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{scope}.{child.name}" if scope else child.name
            if isinstance(child, ast.ImportFrom) and child.module == "json":
                found.add((module, inner or "<module>"))
            if _is_json_call(child):
                found.add((module, inner or "<module>"))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), "")
    return found


def _program_json_uses() -> set[tuple[str, str]]:
    return {use for package in PROGRAMS for path in sorted((ROOT / package).rglob("*.py")) for use in _json_uses(path)}


def test_programs_call_json_only_where_no_wire_message_is_involved() -> None:
    """Every json call in the programs is one of the named non-wire uses; wire messages go through coldchain.wire."""
    assert _program_json_uses() - ALLOWED.keys() == set()


def test_every_allowed_json_use_still_exists() -> None:
    """The list of exceptions shrinks with the code: an entry whose call is gone is removed."""
    assert ALLOWED.keys() - _program_json_uses() == set()
