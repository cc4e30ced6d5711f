"""Position: where a crate is and how it stands.

- ``geometry``: positions, distances, tilt and shock from accelerations.
- ``phases``: the shipment phase a position puts a crate in, and what rules do in each phase.
- ``measurements``: position, orientation and shock events as InfluxDB points.
"""

__all__ = ["geometry", "measurements", "phases"]
