"""What an accelerometer (the probe board's ``$CCTLT``, or the Pi's own) tells people: orientation and shocks.

A board sends its tilt after every tick; publishing each would flood the events topic
with the same angle. The agent reports the first reading of a session, every change of
at least ``TILT_STEP_DEG`` since the last one it reported, and every shock of at least
``SHOCK_G``. Whether a tilt or a shock is an excursion is the gateway's profile's call.
"""

from __future__ import annotations

from typing import Final

from edge.events import Notice

__all__ = ["SHOCK_G", "TILT_STEP_DEG", "OrientationWatch"]

TILT_STEP_DEG: Final = 5.0  # a crate rocking on a truck bed moves a few degrees; a tip moves tens
SHOCK_G: Final = 2.0  # a drop from table height onto a hard floor, well above handling bumps


class OrientationWatch:
    """Turns tilt and shock readings into ``orientation`` and ``shock`` notices."""

    def __init__(self, probe: str) -> None:
        self.probe = probe
        self.reported_deg: float | None = None

    def restart(self) -> None:
        """A reopened (maybe rebooted) board: its next reading is reported afresh."""
        self.reported_deg = None

    def feed(self, tilt_deg: float, shock_g: float, ts: int, mono_ms: int) -> list[Notice]:
        """The notices one reading, taken at ``ts``, gives (none when nothing changed)."""
        notices = []
        if self.reported_deg is None or abs(tilt_deg - self.reported_deg) >= TILT_STEP_DEG:
            self.reported_deg = tilt_deg
            notices.append(Notice("orientation", ts, mono_ms, {"probe": self.probe, "tilt_deg": tilt_deg}))
        if shock_g >= SHOCK_G:
            detail = {"probe": self.probe, "shock_g": shock_g, "tilt_deg": tilt_deg}
            notices.append(Notice("shock", ts, mono_ms, detail))
        return notices
