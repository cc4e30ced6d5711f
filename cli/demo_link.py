"""A crate's network, for ``coldchain demo``: a loopback TCP relay to the broker that can be cut.

The demo points one crate's agent at this relay instead of the broker. ``cut()``
drops its connections and stops listening, as a crate losing its network on a
flight would see it (the broker sends the agent's last will; the agent's
reconnects are refused and it keeps spooling); ``restore()`` listens again on the
same port, so the agent reconnects and drains its spool. Loopback only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from cli.services import free_port

__all__ = ["Relay"]

_POLL_S = 0.2  # how often the threads look at the cut flag
_CHUNK = 65_536


class Relay:
    """Forwards connections on 127.0.0.1:``port`` to ``target``, until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()

    @property
    def up(self) -> bool:
        """True while the relay listens and forwards."""
        return self._listener is not None

    def start(self) -> Relay:
        """Listen and forward (again, after a cut); returns self."""
        listener = socket.socket()
        # the port was ours before the cut: take it back although old connections linger in TIME_WAIT
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="demo-relay", daemon=True).start()
        return self

    def restore(self) -> None:
        """Listen again after a cut: the crate's network is back."""
        self.start()

    def cut(self) -> None:
        """Drop every connection and stop listening: the crate's network is gone."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            _close(sock)

    def stop(self) -> None:
        """Cut for good (the demo is ending)."""
        self._stopped.set()
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set() and self._listener is listener:
            try:
                ready, _, _ = select.select([listener], [], [], _POLL_S)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy both ways until either side closes or the relay is cut."""
        peer = {client: upstream, upstream: client}
        try:
            while True:
                ready, _, _ = select.select(list(peer), [], [], _POLL_S)
                with self._lock:
                    if client not in self._sockets:
                        return
                for sock in ready:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._sockets.discard(client)
                self._sockets.discard(upstream)
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
