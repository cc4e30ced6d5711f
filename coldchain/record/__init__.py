"""A shipment's record: how it is written and kept, and what it says about the product.

- ``lineprotocol``: points as InfluxDB line protocol; ``evidence``: the hash-chained archive.
- ``out_of_range``, ``mkt``, ``stats``: time out of range, mean kinetic temperature, statistics,
  excursions and budgets against the profile.
- ``completeness``: the record's holes; ``verdict``: the release verdict; ``digest``: the SHA-256
  a report carries over the data it rests on.
"""

__all__ = ["completeness", "digest", "evidence", "lineprotocol", "mkt", "out_of_range", "stats", "verdict"]
