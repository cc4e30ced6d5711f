"""Mean kinetic temperature (USP <1079.2>): one temperature that ages a product as a varying history does.

MKT weights each temperature by the Arrhenius factor exp(-ΔH/RT), so a warm hour
counts for far more than a cold one. With the USP's ΔH = 83.144 kJ/mol and
R = 8.3144 J/mol/K, ΔH/R is exactly 10,000 K.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

__all__ = ["ACTIVATION_ENERGY_J_PER_MOL", "GAS_CONSTANT_J_PER_MOL_K", "mean_kinetic_temperature_c"]

ACTIVATION_ENERGY_J_PER_MOL: Final = 83_144.0
GAS_CONSTANT_J_PER_MOL_K: Final = 8.3144
KELVIN_OFFSET: Final = 273.15


def mean_kinetic_temperature_c(
    values_c: Iterable[float],
    weights: Iterable[float] | None = None,
    activation_energy_j_per_mol: float = ACTIVATION_ENERGY_J_PER_MOL,
) -> float:
    """MKT in °C of ``values_c``, each weighted by its duration in ``weights`` (equal weights when None).

    Time-weighting matters for irregular sampling: pass the time each value held,
    e.g. the durations from ``coldchain.record.out_of_range.held_intervals``.
    """
    values = [float(v) for v in values_c]
    spans = [1.0] * len(values) if weights is None else [float(w) for w in weights]
    if len(spans) != len(values):
        raise ValueError(f"{len(values)} values but {len(spans)} weights")
    if not values:
        raise ValueError("mean kinetic temperature of no values is undefined")
    if any(w < 0 for w in spans) or sum(spans) <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    if min(values) <= -KELVIN_OFFSET:
        raise ValueError(f"{min(values)} °C is at or below absolute zero")
    ratio = activation_energy_j_per_mol / GAS_CONSTANT_J_PER_MOL_K
    kelvins = [v + KELVIN_OFFSET for v in values]
    # factor out the largest term so exp() cannot underflow to 0 at cryogenic temperatures
    exponents = [-ratio / k for k in kelvins]
    top = max(exponents)
    mean = sum(w * math.exp(e - top) for w, e in zip(spans, exponents, strict=True)) / sum(spans)
    return ratio / -(top + math.log(mean)) - KELVIN_OFFSET
