"""Faults injected at scheduled simulated times: what goes wrong with probes, board and link.

Probe faults change one probe's reading; board faults change what the board sends
at all. Each is active on ``[start_s, end_s)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BOARD_FAULTS", "FAULT_KINDS", "PROBE_FAULTS", "Fault"]

PROBE_FAULTS = ("open", "short", "stuck", "spikes", "drift")
BOARD_FAULTS = ("corrupt", "disconnect", "brownout", "heartbeat_stop")
FAULT_KINDS = PROBE_FAULTS + BOARD_FAULTS
NOMINAL_SUPPLY_MV = 5000


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault.

    - ``open`` / ``short``: the probe reports ``OPEN``/``SHORT`` (broken or shorted wire);
    - ``stuck``: the probe repeats its last value before the fault, with status ``OK``;
    - ``spikes``: with ``probability`` per sample, the value jumps by ±``magnitude_c``;
    - ``drift``: the value drifts by ``magnitude_c`` per hour since the fault began;
    - ``corrupt``: with ``probability`` per line, one byte is garbled (the checksum no longer matches);
    - ``disconnect``: the serial device disappears and comes back (a new pty; ``--link`` follows it);
    - ``brownout``: the supply falls linearly to ``supply_mv`` by the end; below ``reset_mv`` the board
      is silent in reset and reboots (uptime from 0) when the fault ends;
    - ``heartbeat_stop``: the board keeps sampling but sends no heartbeat.

    ``probe`` names the probe of a probe fault (None: every probe).
    """

    kind: str
    start_s: float
    end_s: float = math.inf
    probe: str | None = None
    magnitude_c: float = 0.0
    probability: float = 0.0
    supply_mv: int = 4000
    reset_mv: int = 4300

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {FAULT_KINDS}")
        if not self.end_s > self.start_s:
            raise ValueError(f"fault {self.kind} ends ({self.end_s}) before it starts ({self.start_s})")

    def active(self, t_s: float) -> bool:
        """True while the fault is in effect."""
        return self.start_s <= t_s < self.end_s

    def applies_to(self, probe: str) -> bool:
        """True when this is a probe fault for ``probe``."""
        return self.kind in PROBE_FAULTS and self.probe in (None, probe)

    def supply_at(self, t_s: float) -> int:
        """Brownout: the supply in mV at ``t_s`` (nominal outside the fault)."""
        if not self.active(t_s):
            return NOMINAL_SUPPLY_MV
        if math.isinf(self.end_s):
            return self.supply_mv
        fraction = (t_s - self.start_s) / (self.end_s - self.start_s)
        return round(NOMINAL_SUPPLY_MV - (NOMINAL_SUPPLY_MV - self.supply_mv) * fraction)
