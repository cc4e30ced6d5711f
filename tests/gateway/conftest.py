"""The gateway part's running pieces: webhook receivers and notification dispatchers, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from notify_helpers import start_receiver
from parts import started

from gateway.notify import Dispatcher


def _close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def _stop(dispatcher: Dispatcher) -> None:
    dispatcher.stop()
    dispatcher.outbox.close()


@pytest.fixture
def serve_hooks() -> Iterator[Callable[..., ThreadingHTTPServer]]:
    """Webhook receivers on loopback (``start_receiver``'s arguments), shut down after the test."""
    yield from started(start_receiver, _close)


@pytest.fixture
def run_dispatcher() -> Iterator[Callable[[Dispatcher], Dispatcher]]:
    """Starts the dispatcher it is given and returns it; after the test each is stopped and its outbox closed."""
    yield from started(Dispatcher.start, _stop)
