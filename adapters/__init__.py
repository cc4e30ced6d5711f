"""Thin adapters to the host that more than one program needs.

systemd's notify socket, loop liveness, the paho client made from broker settings (``mqtt_client``),
secret files and their permission check (``secrets``), and InfluxDB: one writer (``influx_write``) and one
reader (``influx_read``, ``influx_flux``; its rows in ``influx_rows``) for 1.x servers (``influx_v1``, plain
HTTP) and v2-API servers (``influx_v2``, influxdb-client), with one classification of what went wrong
(``influx_errors``), all opened from the core's ``InfluxSettings``.

The core (``coldchain/``) does no I/O, and programs never import each other; what the edge
agent, the gateway and the board share and that talks to the operating system lives here.
Nothing here imports a program.
"""
