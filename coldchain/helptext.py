"""A module docstring as a command's ``--help`` text: reStructuredText literals as a terminal shows them.

Docstrings mark literals with double backticks for the documentation tools; on a terminal
those read as noise. A leading literal (the command line a docstring opens with) loses its
marks, every other literal is quoted.
"""

from __future__ import annotations

import re

__all__ = ["help_text"]

_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def help_text(doc: str | None) -> str:
    """``doc`` without reStructuredText double backticks ('' for no docstring)."""
    text = (doc or "").strip()
    if text.startswith("``") and (match := _LITERAL.match(text)) is not None:
        text = match.group(1) + text[match.end() :]
    return _LITERAL.sub(lambda m: f"'{m.group(1)}'", text)
