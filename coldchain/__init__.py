"""coldchain's pure core: the domain the edge agent, the gateway, the board and the commands share.

Standard library only, no clocks, no I/O. One package per part of the domain:

- ``wire``: the MQTT payload contract v1, every message as a type with its encoder and decoder.
- ``alarms``: rules, their evaluators, one crate's monitor, the alarm engine and the lifecycle.
- ``record``: what InfluxDB holds as a shipment's record (line protocol, evidence chain) and what it
  says (statistics, MKT, completeness, the release verdict, the report's digest).
- ``settings``: typed reading of TOML (``Table``), the shared ``[mqtt]`` and ``[influxdb]`` keys,
  command-line option types.
- ``position``: where a crate is and how it stands, its shipment phase, its position points.

Beside them, one module each: ``errors``, ``topics``, ``sentences`` (the serial protocol),
``profiles`` (product profiles), ``signing``, ``thermistors``, ``helptext``.
"""

__all__ = [
    "alarms",
    "errors",
    "helptext",
    "position",
    "profiles",
    "record",
    "sentences",
    "settings",
    "signing",
    "thermistors",
    "topics",
    "wire",
]
