"""The crate page's release action: QA's decision, as ``coldchain release`` records it, for a signed-in login.

``GET /api/crates/{crate}/release``: what a decision would rest on, built by the code of ``coldchain
report`` (whole record, no window): the subject (the crate's shipment when it has one with readings,
else the crate), the verdict with its reasons, the data SHA-256 and the decisions recorded so far.
``POST /api/release`` ``{"crate", "decision", "note", "sha256"}``: records the decision (``by`` is the
signed-in login, not a typed name) when the record's data SHA-256 is still the one the page showed;
409 with both hashes when the record changed since, and nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
from typing import Any

from aiohttp import web

from adapters.influx_errors import InfluxError
from adapters.influx_read import V1Reader
from board.config import BoardConfig
from board.influx import HistoryError, influx_problem, write_point
from board.state import BoardState
from cli.progress import Progress
from cli.release import DECISIONS, SHA256, refusal, release_point
from cli.report import Report, build_report, identify
from cli.window import Window, iso
from coldchain.errors import ConfigError
from coldchain.topics import valid_identifier
from coldchain.wire import MAX_ACK_BY, MAX_ACK_NOTE

__all__ = ["build_for_crate", "problem", "record_release", "release_view"]

log = logging.getLogger("coldchain.board")


def build_for_crate(config: BoardConfig, reader: V1Reader, crate: str, shipment: str | None) -> Report:
    """The report a decision on this crate's page rests on: its shipment's when there is one, else its own."""
    args = argparse.Namespace(
        subject=shipment or crate, product=None, origin=None, destination=None, profile=None,
        profiles=config.profiles_file, config=None, max_hold=None,
    )  # fmt: skip
    identity, tags = identify(reader, args)
    if identity.kind != "shipment":
        args.subject = crate
        identity, tags = identify(reader, args)
    quiet = Progress(False)
    return build_report(reader, identity, tags, Window(None, None), args=args, progress=quiet, err=io.StringIO())


async def _report(config: BoardConfig, reader: V1Reader, state: BoardState, crate: str) -> Report | web.Response:
    """The crate's report as ``coldchain report`` builds it, or the 502 answer saying why it could not be read."""
    shipment = state.crate_json(crate).get("shipment")
    try:
        return await asyncio.to_thread(build_for_crate, config, reader, crate, shipment)
    except InfluxError as exc:
        return _error(502, influx_problem(exc))
    except ConfigError as exc:
        return _error(502, str(exc))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _view(report: Report) -> dict[str, Any]:
    return {
        "kind": report.identity.kind,
        "subject": report.identity.subject,
        "verdict": report.verdict.line,
        "reasons": list(report.verdict.reasons),
        "sha256": report.sha256,
        "start": iso(report.record.start_ms),
        "end": iso(report.record.end_ms),
        "releases": [
            {"time": iso(x.ts_ms), "by": x.by, "decision": x.decision, "note": x.note,
             "on_this_data": x.sha256 == report.sha256}
            for x in report.releases
        ],
    }  # fmt: skip


async def release_view(config: BoardConfig, reader: V1Reader, state: BoardState, crate: str) -> web.Response:
    """The verdict, reasons, data SHA-256 and recorded decisions a release from this crate's page rests on."""
    if not valid_identifier(crate):
        return _error(404, "no such crate id")
    report = await _report(config, reader, state, crate)
    if isinstance(report, web.Response):
        return report
    if not report.record.readings:
        return _error(404, f"no readings of crate {crate} are stored: nothing to release")
    return web.json_response(_view(report))


def problem(body: Any, user: str) -> str | None:
    """What is wrong with a release request, if anything."""
    if not isinstance(body, dict):
        return "the request body is not a JSON object"
    crate, decision, note, sha = (body.get(k) for k in ("crate", "decision", "note", "sha256"))
    if not isinstance(crate, str) or not valid_identifier(crate):
        return "crate must be a valid crate id"
    if decision not in DECISIONS:
        return f"decision must be one of {list(DECISIONS)}"
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_ACK_NOTE or not note.strip().isprintable():
        return f"'note' is required: 1-{MAX_ACK_NOTE} printable characters"
    if not isinstance(sha, str) or not SHA256.fullmatch(sha.lower()):
        return "'sha256' must be the 64 hexadecimal digits the page showed"
    if len(user) > MAX_ACK_BY or not user.isprintable():
        return f"the signed-in name must be 1-{MAX_ACK_BY} printable characters to sign a release"
    return None


async def record_release(
    config: BoardConfig, reader: V1Reader, state: BoardState, request: web.Request
) -> web.Response:
    """Record the signed-in user's decision on the data the page showed, or say why not."""
    user = str(request["user"])
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the request body is not JSON")
    wrong = problem(body, user)
    if wrong is not None:
        return _error(400, wrong)
    crate, decision, note, sha = body["crate"], body["decision"], body["note"].strip(), body["sha256"].lower()
    report = await _report(config, reader, state, crate)
    if isinstance(report, web.Response):
        return report
    if report.sha256 != sha:
        return _error(409, refusal(report, sha))
    now = int(time.time() * 1000)
    line = release_point(report.identity, report, by=user, decision=decision, note=note, ts_ms=now)
    try:
        await write_point(config.influxdb, line)
    except HistoryError as exc:
        log.error("release of %s by %s NOT recorded: %s", report.identity.subject, user, exc)
        return _error(502, f"the decision was NOT recorded: {exc}")
    log.info("%s %s %s by %s", report.identity.kind, report.identity.subject, decision, user)
    subject = {"kind": report.identity.kind, "subject": report.identity.subject}
    body = {"recorded": True, "by": user, "decision": decision, "time": iso(now), **subject}
    return web.json_response(body, status=201)
