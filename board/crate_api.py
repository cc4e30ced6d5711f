"""The crate page's data: its chart (``/api/crates/{crate}/history``), its route and stance (``…/track``) and
its release decision (``…/release``, ``/api/release``), each judged by the crate's product profile."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from board.chart import chart_data
from board.influx import HistoryError, read_history
from board.release import record_release, release_view
from board.running import Board, board_of, json_error
from board.track import read_track
from coldchain.profiles import Profile
from coldchain.topics import valid_identifier

__all__ = ["history", "release", "release_state", "track"]

log = logging.getLogger("coldchain.board")


def _profile(board: Board, crate: str) -> Profile:
    """The profile the crate's page judges it by: configured, else reported, else the board's default."""
    profiles = board.config.profiles
    return profiles.get(board.hub.state.profile_of(crate)) or profiles[board.config.default_profile]


def _window(request: web.Request, board: Board) -> tuple[int, int] | web.Response:
    """[start, end) in ms of the last ``hours`` (the chart's window), or the error response naming the problem."""
    if not valid_identifier(request.match_info["crate"]):
        return json_error(404, "no such crate id")
    try:
        hours = float(request.query.get("hours", board.config.influxdb.chart_hours))
    except ValueError:
        return json_error(400, "hours must be a number")
    if not 0 < hours <= 24 * 92:
        return json_error(400, "hours must be within 0..2208")
    end_ms = int(time.time() * 1000) + 60_000
    return end_ms - int(hours * 3_600_000), end_ms


async def track(request: web.Request) -> web.StreamResponse:
    """The crate's GPS track over the last N hours (stretches broken where it had no fix), latest tilt (upright or
    tipped against its profile's tilt limit) and shock."""
    board = board_of(request)
    crate = request.match_info["crate"]
    window = _window(request, board)
    if isinstance(window, web.Response):
        return window
    try:
        data = await read_track(board.reader, crate, *window, tipped_deg=_profile(board, crate).tipped_deg)
    except HistoryError as exc:
        log.error("track of %s: %s", crate, exc)
        return json_error(502, str(exc))
    return web.json_response({"crate": crate, "from": window[0], "to": window[1], **data})


async def history(request: web.Request) -> web.StreamResponse:
    """Chart data for one crate: aligned series, limit bands, excursions, over the last N hours."""
    board = board_of(request)
    crate = request.match_info["crate"]
    window = _window(request, board)
    if isinstance(window, web.Response):
        return window
    start_ms, end_ms = window
    profile = _profile(board, crate)
    try:
        buckets, bucket_ms = await read_history(board.reader, board.config.influxdb, crate, start_ms, end_ms)
    except HistoryError as exc:
        log.error("history of %s: %s", crate, exc)
        return json_error(502, str(exc))
    chart = chart_data(buckets, profile, bucket_ms)
    return web.json_response({"crate": crate, "from": start_ms, "to": end_ms, **chart})


async def release_state(request: web.Request) -> web.StreamResponse:
    """What a release decision from the crate's page rests on (verdict, reasons, data SHA-256, decisions so far)."""
    board = board_of(request)
    return await release_view(board.config, board.reader, board.hub.state, request.match_info["crate"])


async def release(request: web.Request) -> web.StreamResponse:
    """Record a release decision by the signed-in login on the data its page showed (``coldchain release``)."""
    board = board_of(request)
    return await record_release(board.config, board.reader, board.hub.state, request)
