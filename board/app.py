"""The board's web application: pages, sign-in, the live event stream and acknowledgements; the crate page's
data (chart, route, release) is served by ``board.crate_api``."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from board.auth import DUMMY_HASH, verify_password
from board.broker import AckNotSentError
from board.crate_api import history, release, release_state, track
from board.history import read_fleet_history
from board.running import BOARD_KEY, COOKIE, Board, board_of, json_error
from coldchain.topics import staff_ack_topic, valid_identifier
from coldchain.wire import MAX_ACK_BY, MAX_ACK_NOTE, StaffAck, encode

__all__ = ["make_app"]

log = logging.getLogger("coldchain.board")

STATIC = Path(__file__).parent / "static"
PAGES = Path(__file__).parent / "pages"
PUBLIC = ("/login", "/healthz")
HEARTBEAT_S = 15.0
MAX_NAME = 64  # sign-in names
# Scripts, styles and the chart library come from the board itself and nowhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign-in required everywhere but the login page; strict headers on every answer."""
    board = board_of(request)
    path = request.path
    if not (path in PUBLIC or path.startswith("/static/")):
        identity = board.identity(request)
        if identity is None:
            if path.startswith("/api/"):
                return json_error(401, "not signed in")
            raise web.HTTPSeeOther(f"/login?next={quote(path)}")
        request["user"], request["session"] = identity
        if request.method == "POST" and not board.signer.csrf_ok(request["session"], request.headers.get("X-CSRF")):
            return json_error(403, "missing or wrong CSRF token: reload the page")
    response = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(PAGES / name, headers={"Content-Type": "text/html; charset=utf-8"})


async def login_page(request: web.Request) -> web.StreamResponse:
    """The sign-in form, under the board's configured title (proxy mode has none: the proxy signs people in)."""
    board = board_of(request)
    if board.config.http.auth_mode == "proxy":
        return web.Response(status=401, text="sign in through the site's proxy\n")
    title = html.escape(board.config.title)
    text = (PAGES / "login.html").read_text().replace("{{title}}", title)
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def _safe_next(target: str) -> str:
    # Only paths on this board: never '//host' or 'https://...' (an open redirect).
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


async def login(request: web.Request) -> web.StreamResponse:
    """Check a name and password; on success set the session cookie and go where the user was headed."""
    board = board_of(request)
    form = await request.post()
    user, password = str(form.get("user", ""))[:MAX_NAME], str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    now = time.time()
    if board.brake.blocked(user, now):
        log.warning("sign-in for %r refused: too many failures", user)
        raise web.HTTPSeeOther("/login?error=blocked")
    stored = board.users.get(user)
    ok = await asyncio.to_thread(verify_password, password, stored or DUMMY_HASH)
    if not (ok and stored):
        board.brake.failed(user, now)
        log.warning("failed sign-in for %r from %s", user, request.remote)
        raise web.HTTPSeeOther(f"/login?error=1&next={quote(target)}")
    board.brake.succeeded(user)
    log.info("%s signed in from %s", user, request.remote)
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE,
        board.signer.issue(user, now),
        max_age=int(board.signer.lifetime_s),
        httponly=True,
        samesite="Strict",
        secure=board.config.http.secure_cookies,
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """Forget the session cookie."""
    response = web.json_response({"signed_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def board_page(_request: web.Request) -> web.StreamResponse:
    """The board itself (drawn by board.js from /api/events)."""
    return _page("board.html")


async def crate_page(request: web.Request) -> web.StreamResponse:
    """One crate's page with its chart."""
    if not valid_identifier(request.match_info["crate"]):
        raise web.HTTPNotFound(text="no such crate id\n")
    return _page("crate.html")


async def me(request: web.Request) -> web.StreamResponse:
    """Who is signed in, the CSRF token for their requests and the board's display settings."""
    board = board_of(request)
    return web.json_response(
        {
            "user": request["user"],
            "csrf": board.signer.csrf(request["session"]),
            "title": board.config.title,
            "stale_after_s": board.config.stale_after_s,
            "chart_hours": board.config.influxdb.chart_hours,
            "can_sign_out": board.config.http.auth_mode == "users",
        }
    )


async def state(request: web.Request) -> web.StreamResponse:
    """The whole board as JSON (for scripts and for a page's first draw)."""
    return web.json_response(board_of(request).hub.snapshot())


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot, then every change, with a heartbeat so proxies keep it open."""
    board = board_of(request)
    hub = board.hub
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    response.headers["Content-Security-Policy"] = CSP
    await response.prepare(request)
    page = hub.open_page()
    try:
        while True:
            try:
                message = await asyncio.wait_for(page.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                message = ": heartbeat\n\n"
            # A stream outlives no session: once it expires the page reconnects and is sent to sign in.
            if message is None or board.identity(request) is None:
                break
            await response.write(message.encode())
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        hub.close_page(page)
    return response


def _ack_field(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=f"'{key}' is required")
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise web.HTTPBadRequest(text=f"'{key}' must be at most {limit} printable characters")
    return value


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Publish a staff acknowledgement of an open alarm or the review of one that cleared unacknowledged, and say
    what the gateway answered."""
    board = board_of(request)
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "the request body is not JSON")
    if not isinstance(body, dict):
        return json_error(400, "the request body is not a JSON object")
    crate, rule, sensor = (body.get(k) for k in ("crate", "rule", "sensor"))
    if not all(isinstance(x, str) and valid_identifier(x) for x in (crate, rule, sensor)):
        return json_error(400, "crate, rule and sensor must be valid ids")
    assert isinstance(crate, str)
    assert isinstance(rule, str)
    assert isinstance(sensor, str)
    try:
        by = _ack_field(body, "by", MAX_ACK_BY)
        note = _ack_field(body, "note", MAX_ACK_NOTE)
    except web.HTTPBadRequest as exc:
        return json_error(400, exc.text or "bad request")
    alarm = board.hub.state.open_alarm(crate, rule, sensor)
    if alarm is None:
        return json_error(409, f"no open alarm {crate}/{rule}/{sensor} (it may have cleared)")
    if not (alarm.state == "active" or alarm.needs_review):
        return json_error(409, f"alarm {crate}/{rule}/{sensor} is already {alarm.state}")
    ack = StaffAck(
        crate, rule, sensor, by=by, note=note, ts=int(time.time() * 1000),
        request=secrets.token_hex(12), alarm_id=alarm.alarm_id,
    )  # fmt: skip
    return await _send_and_wait(board, ack, request["user"])


async def _send_and_wait(board: Board, ack: StaffAck, user: str) -> web.Response:
    """Publish ``ack`` and answer with the gateway's word: recorded (200), refused (409) or none in time (504)."""
    what = f"{ack.crate}/{ack.rule}/{ack.sensor}"
    answer = board.hub.wait_for_answer(ack)  # before publishing: the answer may come at once
    try:
        try:
            await asyncio.to_thread(
                board.link.publish_ack, staff_ack_topic(ack.crate, ack.rule, ack.sensor), encode(ack)
            )
        except AckNotSentError as exc:
            log.error("ack of %s by %r NOT sent: %s", what, ack.by, exc)
            status = 504 if exc.sent_maybe else 503
            return json_error(status, f"acknowledgement not confirmed: {exc}")
        timeout_s = board.config.mqtt.answer_timeout_s
        try:
            result = await asyncio.wait_for(answer, timeout_s)
        except TimeoutError:
            log.warning("ack of %s by %r (signed in as %s): no answer from the gateway", what, ack.by, user)
            return json_error(
                504,
                f"not confirmed: the gateway did not answer within {timeout_s:g} s. The broker took the"
                " acknowledgement, but nothing says it was recorded: check that the gateway runs",
            )
    finally:
        board.hub.stop_waiting(ack)
    if not result.recorded:
        log.warning("ack of %s by %r refused by the gateway: %s", what, ack.by, result.reason)
        return web.json_response({"error": f"refused by the gateway: {result.reason}", "refused": True}, status=409)
    assert result.alarm is not None
    log.info("ack of %s by %r (signed in as %s) recorded", what, ack.by, user)
    reviewed = result.alarm.state == "cleared"
    return web.json_response({"recorded": True, "alarm": result.alarm.alarm_id, "by": ack.by, "reviewed": reviewed})


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness for the service manager or a proxy: says only whether the broker link is up."""
    return web.json_response({"ok": True, "broker": board_of(request).link.connected})


async def _keep_history(board: Board) -> None:
    """Read the fleet's stored shipments and excursions now, every ``history_refresh_s``, and soon after an alarm
    changes (a second later, so a burst of changes costs one read)."""
    settings = board.config.influxdb
    while True:
        board.hub.history_wanted.clear()
        fleet = await read_fleet_history(board.reader, settings)
        if fleet.error:
            log.warning("excursion history not read: %s", fleet.error)
        board.hub.apply_history(fleet)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(board.hub.history_wanted.wait(), settings.history_refresh_s)
            await asyncio.sleep(1.0)


def make_app(board: Board) -> web.Application:
    """The aiohttp application serving ``board``."""
    app = web.Application(middlewares=[_security], client_max_size=64 * 1024)
    app[BOARD_KEY] = board
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/", board_page)
    app.router.add_get("/crates/{crate}", crate_page)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/ack", acknowledge)
    app.router.add_get("/api/crates/{crate}/history", history)
    app.router.add_get("/api/crates/{crate}/track", track)
    app.router.add_get("/api/crates/{crate}/release", release_state)
    app.router.add_post("/api/release", release)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC, append_version=False)

    async def lifecycle(app: web.Application) -> Any:
        flusher = asyncio.create_task(board.hub.run_flusher())
        historian = asyncio.create_task(_keep_history(board))
        yield
        flusher.cancel()
        historian.cancel()

    app.cleanup_ctx.append(lifecycle)
    return app
