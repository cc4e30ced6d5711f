"""The board's serial port: the master side of a pseudo-terminal.

The agent opens the slave (``/dev/pts/N``) with pyserial like a real UART. We
close our own slave descriptor at once, so the kernel tells us (POLLHUP) whether
anybody has the port open: bytes sent while nobody listens are lost, as on a
real wire, instead of piling up and reaching the agent late with stale values.

With ``link_path`` the device is also reachable through a symlink that is
re-pointed atomically whenever the port is re-created (a USB board unplugged
and plugged back gets a new ``/dev/pts/N``, like ``/dev/ttyUSB0`` -> ``ttyUSB1``);
the agent configured with the symlink path finds the board again by reopening it.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import termios
import time
import tty
from pathlib import Path

__all__ = ["PtyLink"]

_READ_CHUNK = 4096
_MAX_LINE = 256  # a command line longer than this is garbage: drop it
# FIONREAD sees only the line discipline's 4 KB, not the kernel's flip buffers behind it
# (up to 64 KB), which refill it within microseconds: empty this long means drained
_SETTLE_S = 0.1


class PtyLink:
    """One pseudo-terminal standing for the board's serial port."""

    def __init__(self, link_path: Path | None = None) -> None:
        self.link_path = link_path
        self.device = ""
        self._master = -1
        self._poll = select.poll()
        self._pending = b""
        self.dropped = 0  # sentences lost because the listener did not read them in time

    @property
    def path(self) -> str:
        """The path an agent should open: the stable symlink if there is one, else the device."""
        return str(self.link_path) if self.link_path is not None else self.device

    def open(self) -> str:
        """Create the pty (and point the symlink at it); return the device path."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo of our own sentences, no CR/LF translation before pyserial opens it
        self.device = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self._poll = select.poll()
        self._poll.register(master, select.POLLIN)
        self._pending = b""
        if self.link_path is not None:
            temporary = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            temporary.symlink_to(self.device)
            temporary.replace(self.link_path)
        return self.device

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the listener to read everything sent; True when it did.

        Closing the pty discards what the reader has not read yet, so a finished run
        waits here first (the queue is measured on the slave side: the master cannot see it).
        """
        if not self.listening():
            return True
        try:
            slave = os.open(self.device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            pending = array.array("i", [0])
            deadline = time.monotonic() + timeout_s
            empty_since = time.monotonic()
            while time.monotonic() < deadline:
                fcntl.ioctl(slave, termios.FIONREAD, pending)
                if pending[0]:
                    empty_since = time.monotonic()
                elif time.monotonic() - empty_since >= _SETTLE_S:
                    return True
                time.sleep(0.005)
            return False
        finally:
            os.close(slave)

    def close(self) -> None:
        """Close the pty: the device node disappears and a reader gets an error. The symlink stays, dangling."""
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def remove_link(self) -> None:
        """Remove the symlink, if we made one."""
        if self.link_path is not None and self.link_path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def fileno(self) -> int:
        """The master descriptor, for select()."""
        return self._master

    @property
    def is_open(self) -> bool:
        """True while the device exists."""
        return self._master >= 0

    def listening(self) -> bool:
        """True while some process has the device open."""
        if self._master < 0:
            return False
        return not any(event & select.POLLHUP for _, event in self._poll.poll(0))

    def readable(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for input from a listener (returns at once when nobody listens)."""
        if not self.listening():
            return False
        return any(event & select.POLLIN for _, event in self._poll.poll(max(0, int(timeout_s * 1000))))

    def write(self, data: bytes, wait_s: float = 0.0) -> bool:
        """Send ``data`` to the listener; waits up to ``wait_s`` for room, else drops it. False when not sent."""
        if not self.listening():
            return False
        deadline = time.monotonic() + wait_s
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.dropped += 1
                    return False
                time.sleep(0.001)
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: the listener just closed the port
                    raise
                return False
        return True

    def read_lines(self) -> list[bytes]:
        """Complete lines the listener has written so far (without blocking)."""
        if self._master < 0:
            return []
        try:
            self._pending += os.read(self._master, _READ_CHUNK)
        except OSError:  # EAGAIN: nothing yet; EIO: the listener closed the port
            return []
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > _MAX_LINE:
            self._pending = b""
        return [line + b"\n" for line in lines]
