"""coldchain's pure core: wire contract, serial sentences, topics, profiles, excursion arithmetic.

Standard library only, no clocks, no I/O: imported by the edge agent, the gateway
and the firmware simulator alike.
"""

__all__ = ["errors", "excursions", "profiles", "sentences", "settings", "topics", "wire"]
