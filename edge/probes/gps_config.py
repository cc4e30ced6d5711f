"""The agent's optional ``[gps]`` table: a GPS receiver speaking NMEA 0183 over a serial port."""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.settings.table import Table

__all__ = ["GpsConfig", "parse_gps"]


@dataclass(frozen=True, slots=True)
class GpsConfig:
    """Where the receiver is and how often the crate reports its position."""

    port: str  # device path or pyserial URL ("/dev/serial0", "/dev/ttyACM0", "loop://")
    baudrate: int = 9600  # most receivers' NMEA default
    report_s: float = 60.0  # a position event at most this often while the fix holds


def parse_gps(table: Table) -> GpsConfig | None:
    """The ``[gps]`` table, None when the crate has no receiver (no ``port``)."""
    port = table.text("port", None)
    if port is None:
        return None
    if not port.strip():
        raise table.error("port", "must not be empty")
    return GpsConfig(
        port,
        baudrate=table.integer("baudrate", 9600, minimum=1200, maximum=921_600),
        report_s=table.number("report_s", 60.0, minimum=1.0, maximum=86_400.0),
    )
