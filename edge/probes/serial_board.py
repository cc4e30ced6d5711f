"""The serial probe board (firmware protocol v1, ``coldchain.sentences``).

Opened with ``serial.serial_for_url`` so the same code runs on a USB adapter, a
pty (the simulator, the tests) and ``loop://``. The board may vanish (USB unplugged,
a brown-out) and come back under another ``/dev`` path: the port is found again by
glob or by the adapter's USB serial number, and reopened with a capped backoff.
Bad lines are counted and logged, never fatal.
"""

from __future__ import annotations

import glob
import logging
import threading
from collections.abc import Callable

import serial
from serial.tools import list_ports

from coldchain.errors import SentenceError
from coldchain.sentences import (
    AckSentence,
    ClockSentence,
    CommandSentence,
    HeartbeatSentence,
    LidSentence,
    TemperatureSentence,
    TiltSentence,
    parse_sentence,
)
from edge.clock import Clock
from edge.config import SerialProbeConfig
from edge.events import Event, Notice, PowerOn, Sample
from edge.probes.orientation import OrientationWatch
from edge.probes.ticks import Tick, TickAssembler

__all__ = ["SerialBoard"]

log = logging.getLogger(__name__)

MAX_LINE = 256  # longer without a newline is garbage; drop it rather than grow
REOPEN_MAX_S = 5.0
RATE_TRIES = 5
RATE_RETRY_MS = 2000


def _resolve(config: SerialProbeConfig) -> str | None:
    """The device to open now: a URL or path as given, a glob's first match, or the USB serial's port."""
    if config.usb_serial is not None:
        for port in list_ports.comports():
            if port.serial_number == config.usb_serial:
                return str(port.device)
        return None
    assert config.port is not None
    if "://" in config.port or not glob.has_magic(config.port):
        return config.port
    matches = sorted(glob.glob(config.port))
    return matches[0] if matches else None


class SerialBoard:
    """Reads one probe board; emits a Sample per tick and Notices for lid and heartbeat."""

    def __init__(self, config: SerialProbeConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.name = config.usb_serial or config.port or "serial"
        self.bad_lines = 0
        self.unknown_sensors = 0
        self.rate_acked: int | None = None
        self.device: str | None = None  # the device open right now
        self._assembler = TickAssembler(config.sensors, int(config.tick_timeout_s * 1000))
        self.orientation = OrientationWatch(self.name)
        self._last_heartbeat_ms: int | None = None
        self._heartbeat_missing = False
        self._warned_no_board_clock = False
        self._board_clock_ms: int | None = None  # the latest CCTIM: it also stamps a CCLID that follows it
        self._power_on: PowerOn | None = None  # when the board was switched on, from its heartbeat's uptime
        self._power_on_by: int | None = None  # monotonic ms until which samples wait for the first heartbeat
        self._uptime_s = 0
        self._rate_tries = 0
        self._rate_sent_ms = 0

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Read until ``stop`` is set, reopening the board whenever it goes away."""
        delay = 0.1
        while not stop.is_set():
            device = _resolve(self.config)
            if device is None:
                log.warning("probe board %s: no device matches; retrying in %.1f s", self.name, delay)
            else:
                try:
                    link = serial.serial_for_url(device, baudrate=self.config.baudrate, timeout=0.05)
                except (serial.SerialException, OSError) as exc:
                    log.warning(
                        "probe board %s: cannot open %s (%s); retrying in %.1f s", self.name, device, exc, delay
                    )
                else:
                    delay = 0.1
                    log.info("probe board %s: opened %s", self.name, device)
                    self.device = device
                    try:
                        self._session(link, emit, stop)
                    except (serial.SerialException, OSError) as exc:
                        log.error("probe board %s: link %s lost (%s); will reopen", self.name, device, exc)
                    finally:
                        self.device = None
                        link.close()
                        self._emit_tick(self._assembler.flush(), emit)
            stop.wait(delay)
            delay = min(delay * 2, REOPEN_MAX_S)

    def _session(self, link: serial.Serial, emit: Callable[[Event], None], stop: threading.Event) -> None:
        self.rate_acked = None
        self._rate_tries = 0
        self._rate_sent_ms = 0
        self._board_clock_ms = None  # a reopened (maybe rebooted) board stamps its lid afresh
        self._last_heartbeat_ms = self.clock.mono_ms()
        self._power_on = self._power_on_by = None  # ...and tells its switch-on time afresh
        self.orientation.restart()
        buffer = b""
        while not stop.is_set():
            chunk = link.read(max(1, link.in_waiting))
            if chunk:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._line_isolated(line, emit)
                if len(buffer) > MAX_LINE:
                    self._bad(f"{len(buffer)} bytes without a line end")
                    buffer = b""
            self._emit_tick(self._assembler.expire(self.clock.mono_ms()), emit)
            self._check_heartbeat(emit)
            self._ask_rate(link)

    def _ask_rate(self, link: serial.Serial) -> None:
        """Send $CCCMD,RATE until the board acknowledges it (a board that just reset may miss the first)."""
        wanted = self.config.rate_ms
        if wanted is None or self.rate_acked == wanted or self._rate_tries > RATE_TRIES:
            return
        now = self.clock.mono_ms()
        if self._rate_tries and now - self._rate_sent_ms < RATE_RETRY_MS:
            return
        if self._rate_tries == RATE_TRIES:
            log.error("probe board %s: no $CCACK,RATE after %d tries; it keeps its own period", self.name, RATE_TRIES)
            self._rate_tries += 1
            return
        link.write(CommandSentence("RATE", str(wanted)).encode())
        self._rate_tries += 1
        self._rate_sent_ms = now

    def _bad(self, problem: str) -> None:
        self.bad_lines += 1
        log.warning("probe board %s: bad line #%d ignored: %s", self.name, self.bad_lines, problem)

    def _line_isolated(self, line: bytes, emit: Callable[[Event], None]) -> None:
        """Handle one line; whatever it does, the reader goes on with the next (and the link stays open)."""
        try:
            self._line(line, emit)
        except Exception:
            self.bad_lines += 1
            log.exception("probe board %s: bad line #%d ignored: %r failed", self.name, self.bad_lines, line[:100])

    def _line(self, line: bytes, emit: Callable[[Event], None]) -> None:
        if not line.strip():
            return
        try:
            sentence = parse_sentence(line)
        except SentenceError as exc:
            self._bad(str(exc))
            return
        now_wall, now_mono = self.clock.wall_ms(), self.clock.mono_ms()
        if isinstance(sentence, TemperatureSentence):
            if sentence.sensor not in self._assembler.sensors:
                self.unknown_sensors += 1
                if self.unknown_sensors == 1 or self.unknown_sensors % 1000 == 0:
                    log.warning(
                        "probe board %s: sensor %r is not configured (%d such lines ignored); configured: %s",
                        self.name,
                        sentence.sensor,
                        self.unknown_sensors,
                        sorted(self._assembler.sensors),
                    )
                return
            for tick in self._assembler.feed(sentence, now_wall, now_mono):
                self._emit_tick(tick, emit)
        elif isinstance(sentence, ClockSentence):
            self._board_clock_ms = sentence.epoch_ms
            self._emit_tick(self._assembler.clock(sentence.epoch_ms), emit)
        elif isinstance(sentence, HeartbeatSentence):
            if self._heartbeat_missing:
                log.info("probe board %s: heartbeat is back (uptime %d s)", self.name, sentence.uptime_s)
                emit(Notice("heartbeat_restored", now_wall, now_mono, {"probe": self.name}))
                self._heartbeat_missing = False
            self._last_heartbeat_ms = now_mono
            self._heard_uptime(sentence.uptime_s, now_mono, emit)
        elif isinstance(sentence, AckSentence):
            if sentence.name == "RATE" and sentence.argument.isdigit():
                self.rate_acked = int(sentence.argument)
                log.info("probe board %s: sample period set to %s ms", self.name, sentence.argument)
            else:
                self._bad(f"acknowledgement of a command we did not send: {sentence!r}")
        elif isinstance(sentence, LidSentence):
            event = "lid_open" if sentence.state == "OPEN" else "lid_closed"
            emit(Notice(event, self._event_ts(now_wall), now_mono, {}))
        elif isinstance(sentence, TiltSentence):
            ts = self._event_ts(now_wall)
            for notice in self.orientation.feed(sentence.tilt_deg, sentence.shock_g, ts, now_mono):
                emit(notice)
        else:
            self._bad(f"unexpected sentence from the board: {sentence!r}")

    def _event_ts(self, now_wall: int) -> int:
        """An event's time like the readings': the gateway's rules compare them."""
        if self.config.time_source == "board" and self._board_clock_ms is not None:
            return self._board_clock_ms
        return now_wall

    def _heard_uptime(self, uptime_s: int, now_mono: int, emit: Callable[[Event], None]) -> None:
        """The first heartbeat of a session, or one whose uptime went back (the board rebooted), dates its switch-on."""
        rebooted = uptime_s < self._uptime_s
        self._uptime_s = uptime_s
        if self._power_on is not None and not rebooted:
            return
        uptime_ms = uptime_s * 1000
        # the board's clock of a heartbeat is its last CCTIM's (a heartbeat follows its tick's burst)
        board_ms = self._board_clock_ms - uptime_ms if self._board_clock_ms is not None else None
        self._power_on = PowerOn(self.name, now_mono - uptime_ms, board_ms)
        log.info("probe board %s: switched on %d s ago%s", self.name, uptime_s, " (rebooted)" if rebooted else "")
        emit(self._power_on)

    def _check_heartbeat(self, emit: Callable[[Event], None]) -> None:
        if self._heartbeat_missing or self._last_heartbeat_ms is None:
            return
        now = self.clock.mono_ms()
        if now - self._last_heartbeat_ms > self.config.heartbeat_timeout_s * 1000:
            self._heartbeat_missing = True
            log.error(
                "probe board %s: no heartbeat for %.0f s (board hung or reset?)",
                self.name,
                self.config.heartbeat_timeout_s,
            )
            emit(Notice("heartbeat_missing", self.clock.wall_ms(), now, {"probe": self.name}))

    def _emit_tick(self, tick: Tick | None, emit: Callable[[Event], None]) -> None:
        if tick is None:
            return
        use_board = self.config.time_source == "board"
        if use_board and tick.board_ts is None and not self._warned_no_board_clock:
            self._warned_no_board_clock = True
            log.warning("probe board %s: time_source is 'board' but no CCTIM came; using the Pi's clock", self.name)
        board = use_board and tick.board_ts is not None
        ts = tick.board_ts if board and tick.board_ts is not None else tick.wall_ms
        readings = tuple(sorted(tick.readings.values(), key=lambda r: r.sensor))
        powered_on, power_on_by = None, None
        if self._power_on is not None:
            powered_on = self._power_on.stamp(ts, tick.mono_ms, board)
        elif self.config.power_on_wait_s > 0:
            # a board's first heartbeat follows its first burst: the samples before it wait for it, briefly
            if self._power_on_by is None:
                self._power_on_by = tick.mono_ms + round(self.config.power_on_wait_s * 1000)
            if tick.mono_ms < self._power_on_by:
                power_on_by = self._power_on_by
        emit(Sample(ts, tick.mono_ms, readings, board, self.name, powered_on, power_on_by))
