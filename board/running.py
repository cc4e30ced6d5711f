"""The running board behind every request: config, live state, broker link, sign-in, and the answers shared by
the handlers of ``board.app`` and ``board.crate_api``."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from adapters.influx_read import V1Reader
from board.auth import LoginBrake, SessionSigner
from board.broker import BrokerLink
from board.config import BoardConfig
from board.hub import Hub

__all__ = ["BOARD_KEY", "COOKIE", "Board", "board_of", "json_error"]

COOKIE = "coldchain_board"


class Board:
    """The running board: config, live state, broker link, sign-in."""

    def __init__(self, config: BoardConfig, hub: Hub, link: BrokerLink) -> None:
        self.config = config
        self.hub = hub
        self.link = link
        key = config.http.session_key or secrets.token_bytes(32)
        self.signer = SessionSigner(key, config.http.session_hours * 3600)
        self.brake = LoginBrake()
        self.users = {u.name: u.password_hash for u in config.http.users}
        self.reader = V1Reader(config.influxdb)  # InfluxDB 1.x only (the board's [influxdb] offers no api)

    def identity(self, request: web.Request) -> tuple[str, str] | None:
        """(user, session id for CSRF) of a request, or None when it is not signed in."""
        if self.config.http.auth_mode == "proxy":
            named = request.headers.get(self.config.http.proxy_header, "").strip()
            return (named, f"proxy:{named}") if named else None
        cookie = request.cookies.get(COOKIE)
        user = self.signer.user(cookie, time.time())
        return (user, cookie or "") if user else None


BOARD_KEY = web.AppKey("board", Board)


def board_of(request: web.Request) -> Board:
    """The board a request is served by."""
    return request.app[BOARD_KEY]


def json_error(status: int, message: str) -> web.Response:
    """An error answer for the page's scripts: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)
