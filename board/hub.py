"""Fans board changes out to every open page as server-sent events.

Alarm and online/offline changes go out at once; telemetry is coalesced per crate
and flushed once a second, so a busy fleet cannot flood the browsers. A page
that cannot keep up is disconnected (its browser reconnects and gets a fresh snapshot)
rather than silently missing an update.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from board.broker import BoardEvent
from board.history import FleetHistory
from board.messages import alarm_json
from board.state import BoardState
from coldchain.alarms.ack_answer import AckAnswer, answer_to, recorded_in
from coldchain.topics import rejected_topic
from coldchain.wire import StaffAck

__all__ = ["Hub", "Inbox", "PageStream"]

log = logging.getLogger("coldchain.board.hub")


def sse(kind: str, data: Any) -> str:
    """One server-sent event (strict JSON: a NaN would make the page's JSON.parse fail)."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), allow_nan=False)}\n\n"


class Inbox:
    """Hands events from paho's thread to the event loop in batches.

    One loop wake-up per batch, not per message: a fleet sending thousands of readings a
    second would otherwise keep the loop busy waking up, and alarms would queue behind it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Callable[[BoardEvent], None]) -> None:
        self._loop = loop
        self._handle = handle
        self._pending: deque[BoardEvent] = deque()

    def put(self, event: BoardEvent) -> None:
        """Queue an event (from any thread); wake the loop only when the queue was empty."""
        self._pending.append(event)
        if len(self._pending) == 1:
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        while self._pending:
            self._handle(self._pending.popleft())


class PageStream:
    """One open page's queue of events; ``None`` in the queue means: close, you fell behind."""

    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(limit)

    def push(self, message: str) -> bool:
        """Queue a message; False (and the page is told to close) when the page fell behind."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False
        return True


class Hub:
    """Owns the board state on the event loop; every change is applied here, then broadcast."""

    def __init__(self, state: BoardState, flush_s: float = 1.0, page_queue: int = 1000) -> None:
        self.state = state
        self.flush_s = flush_s
        self.page_queue = page_queue
        self.pages: set[PageStream] = set()
        self.broker = {"connected": False, "reason": "connecting"}
        self.dropped_pages = 0
        self.dropped_events = 0  # decoded messages the board could not show: left out, logged
        self._dirty: set[str] = set()
        # acknowledgements sent from pages, by request id, until the gateway answers or the page stops waiting
        self._waiting: dict[str, tuple[StaffAck, asyncio.Future[AckAnswer]]] = {}
        self.history_wanted = asyncio.Event()  # an alarm changed: read the stored history again soon

    def apply(self, event: BoardEvent) -> None:
        """Apply one broker event (on the event loop) and tell the pages.

        Every page is drawn from one shared state: an event that cannot be shown is left out of
        it (logged, counted) before it gets there, and one that fails on the way stops nothing.
        """
        try:
            self._check_showable(event)
            self._apply(event)
        except Exception:
            self.dropped_events += 1
            log.exception("left out a %s event the board cannot show (%d so far)", event.kind, self.dropped_events)

    @staticmethod
    def _check_showable(event: BoardEvent) -> None:
        """Raise (ValueError) for what would make the pages' JSON invalid, before it enters the state."""
        if event.alarm is not None:
            json.dumps(alarm_json(event.alarm), allow_nan=False)
        if event.telemetry is not None:
            json.dumps([r.to_wire() for r in event.telemetry.readings], allow_nan=False)

    def wait_for_answer(self, ack: StaffAck) -> asyncio.Future[AckAnswer]:
        """A future the gateway's answer to ``ack`` (which carries a request id) resolves; ``stop_waiting`` after."""
        assert ack.request is not None
        future: asyncio.Future[AckAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[ack.request] = (ack, future)
        return future

    def stop_waiting(self, ack: StaffAck) -> None:
        """The page's request is over, answered or not."""
        self._waiting.pop(ack.request or "", None)

    def _answered(self, judge: Callable[[StaffAck], AckAnswer | None]) -> None:
        for ack, future in list(self._waiting.values()):
            answer = judge(ack)
            if answer is not None and not future.done():
                future.set_result(answer)

    def _apply(self, event: BoardEvent) -> None:
        if event.kind == "alarm" and event.key is not None:
            crate = self.state.apply_alarm(event.key, event.alarm)
            self._answered(lambda ack: recorded_in(ack, event.alarm))
            self._broadcast(sse("alarms", self.state.alarms_json()))
            self._broadcast(sse("review", self.state.review_json()))
            self._broadcast(sse("crate", self.state.crate_json(crate)))
            self.history_wanted.set()
        elif event.kind == "rejected":
            self._answered(lambda ack: answer_to(ack, rejected_topic(), event.raw))
        elif event.kind == "status" and event.status is not None:
            crate = self.state.apply_status(event.status, int(time.time() * 1000) if event.live else None)
            self._broadcast(sse("crate", self.state.crate_json(crate)))
        elif event.kind == "telemetry" and event.telemetry is not None:
            self._dirty.add(self.state.apply_telemetry(event.telemetry))
        elif event.kind == "connection":
            self.broker = {"connected": event.connected, "reason": event.reason}
            self._broadcast(sse("broker", self.broker))

    def apply_history(self, fleet: FleetHistory) -> None:
        """What InfluxDB says of shipments and excursions: redraw the crates it changed."""
        changed = self.state.apply_history(fleet)
        for crate in changed:
            self._broadcast(sse("crate", self.state.crate_json(crate)))
        if changed and self.state.review:  # a review row names its crate's shipment
            self._broadcast(sse("review", self.state.review_json()))

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw itself from scratch."""
        return {**self.state.snapshot(), "broker": self.broker}

    def open_page(self) -> PageStream:
        """A new page's stream, starting with a full snapshot."""
        page = PageStream(self.page_queue)
        page.push(sse("snapshot", self.snapshot()))
        self.pages.add(page)
        return page

    def close_page(self, page: PageStream) -> None:
        """Forget a page that went away."""
        self.pages.discard(page)

    def flush(self) -> None:
        """Send the crates whose readings changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        for crate in sorted(dirty):
            self._broadcast(sse("crate", self.state.crate_json(crate)))

    async def run_flusher(self) -> None:
        """Flush coalesced telemetry every ``flush_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.flush_s)
            self.flush()

    def _broadcast(self, message: str) -> None:
        for page in list(self.pages):
            if not page.push(message):
                self.pages.discard(page)
                self.dropped_pages += 1
                log.warning("a page fell %d events behind and was disconnected", self.page_queue)
