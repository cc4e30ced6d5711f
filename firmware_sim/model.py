"""Crate physics: the temperature a probe sees, as a pure function of parameters and time.

Time ``t_s`` is simulated seconds since the shipment started (board boot).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Ramp"]


@dataclass(frozen=True, slots=True)
class Ramp:
    """Steady at ``start_c``, then warming linearly at ``rate_c_per_min`` from ``after_s`` on.

    The walking skeleton's trace: an excursion on demand, no physics.
    """

    start_c: float
    rate_c_per_min: float = 0.0
    after_s: float = 0.0

    def temperature(self, t_s: float) -> float:
        """True temperature at ``t_s``."""
        return self.start_c + self.rate_c_per_min * max(0.0, t_s - self.after_s) / 60.0
