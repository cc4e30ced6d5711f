"""A one-line live status on stderr for commands that take more than a moment."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Rewrites one status line (on a terminal), or prints a line at most every few seconds (in a log).

    Off when ``enabled`` is False; ``None`` means: on when stderr is a terminal.
    """

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.every_s = every_s
        self._last = 0.0
        self._shown = False

    def update(self, text: str, force: bool = False) -> None:
        """Show ``text`` as the current status."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r\x1b[K{text}")
        elif force or now - self._last >= self.every_s:
            self.stream.write(f"{text}\n")
        else:
            return
        self._last = now
        self._shown = True
        self.stream.flush()

    def done(self, text: str) -> None:
        """Replace the status with a final line."""
        if not self.enabled:
            return
        self.stream.write(f"\r\x1b[K{text}\n" if self.tty else f"{text}\n")
        self.stream.flush()
