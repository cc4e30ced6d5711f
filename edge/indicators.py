"""The crate's own GPIO: the lid switch, and the buzzer and LED of the local alarm (gpiozero).

``pin_factory`` is gpiozero's seam: None on the Pi, ``MockFactory`` in tests.
The lid's reed switch is closed while the lid is shut, wired between the pin and
ground (internal pull-up): pressed = lid closed, released = lid open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpiozero import LED, Button, Buzzer

from edge.clock import Clock
from edge.config import AlarmConfig
from edge.events import Event, Notice

__all__ = ["Indicators"]

log = logging.getLogger(__name__)


class Indicators:
    """Lid events in, alarm outputs out; each part optional (not every crate has them fitted)."""

    def __init__(self, config: AlarmConfig, emit: Callable[[Event], None], clock: Clock, pin_factory: Any = None):
        self.clock = clock
        self.emit = emit
        self.buzzer = Buzzer(config.buzzer_pin, pin_factory=pin_factory) if config.buzzer_pin else None
        self.led = LED(config.led_pin, pin_factory=pin_factory) if config.led_pin else None
        self.lid = None
        if config.lid_pin:
            self.lid = Button(config.lid_pin, pull_up=True, bounce_time=0.05, pin_factory=pin_factory)
            self.lid.when_pressed = lambda: self._lid("lid_closed")
            self.lid.when_released = lambda: self._lid("lid_open")
        self.sounding = False

    def _lid(self, event: str) -> None:
        # runs on gpiozero's thread: hand over to the agent loop, nothing more
        self.emit(Notice(event, self.clock.wall_ms(), self.clock.mono_ms()))

    def alarm(self, on: bool) -> None:
        """Switch the local alarm (buzzer and LED) on or off."""
        if on == self.sounding:
            return
        self.sounding = on
        log.warning("local alarm %s", "ON" if on else "off")
        for device in (self.buzzer, self.led):
            if device is not None:
                device.value = on

    def close(self) -> None:
        """Switch everything off and release the pins."""
        self.alarm(False)
        for device in (self.buzzer, self.led, self.lid):
            if device is not None:
                device.close()
