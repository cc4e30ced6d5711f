"""The gateway is assembled through constructors: no module assigns another object's attributes afterwards."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"

# (module, name of the object written) -> why writing its attributes there is not assembling by mutation
ALLOWED = {
    ("mqtt_link.py", "client"): "paho's Client takes its callbacks (on_connect, ...) only as attributes",
    ("mqtt_link.py", "properties"): "paho's Properties takes its fields (CONNECT's) only as attributes",
    ("cluster_publisher.py", "client"): "paho's Client takes its callbacks (on_connect, ...) only as attributes",
}


def _written_attributes(tree: ast.AST) -> list[tuple[int, ast.Attribute]]:
    """Every ``x.y`` written (assigned, augmented, annotated or deleted) in ``tree``, with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        stack = list(targets)
        while stack:
            target = stack.pop()
            if isinstance(target, ast.Tuple | ast.List):
                stack += target.elts
            elif isinstance(target, ast.Starred):
                stack.append(target.value)
            elif isinstance(target, ast.Attribute):
                found.append((node.lineno, target))
    return found


def _foreign_writes() -> tuple[list[str], set[tuple[str, str]]]:
    """Writes of attributes of anything but ``self``, outside the allowed ones; and the allowed ones met."""
    flagged, used = [], set()
    for path in sorted(GATEWAY.rglob("*.py")):
        module = path.relative_to(GATEWAY).as_posix()
        for line, target in _written_attributes(ast.parse(path.read_text(), str(path))):
            owner = target.value
            if isinstance(owner, ast.Name) and owner.id == "self":
                continue
            name = owner.id if isinstance(owner, ast.Name) else ast.unparse(owner)
            if (module, name) in ALLOWED:
                used.add((module, name))
                continue
            flagged.append(f"gateway/{module}:{line}: {ast.unparse(target)} = ...")
    return flagged, used


def test_no_gateway_module_assigns_another_objects_attributes() -> None:
    """Parts get what they need through their constructors: ``x.y = ...`` is only ever ``self.y = ...``."""
    flagged, _ = _foreign_writes()
    assert flagged == [], "give it through the constructor or a method instead:\n" + "\n".join(flagged)


def test_every_allowed_attribute_write_is_still_needed() -> None:
    """The allow-list holds no entry the code no longer needs."""
    _, used = _foreign_writes()
    assert set(ALLOWED) - used == set()
