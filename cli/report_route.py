"""The release report's route section: a plain track plot per crate (matplotlib, Agg: nothing fetched, no
tiles), the time in each phase of the shipment, the tilts beyond the profile's limit and the shocks."""

from __future__ import annotations

import bisect
import io
import math
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Image, KeepTogether, LongTable, Paragraph, TableStyle

from cli.report_chart import finished_png
from cli.report_motion import CrateMotion
from cli.window import format_duration, iso
from coldchain.position.phases import PHASES, Area

__all__ = ["route_png", "route_section"]

KM_PER_DEG = 111.32  # a degree of latitude, and of longitude at the equator
TRACK_BLUE = "#1f3b73"
AREA_COLOURS = {"origin": "#1a7f37", "destination": "#b42318"}


def _utc(ms: int) -> str:
    """To the second: a phase runs to the window's end, 1 ms after the last reading."""
    return iso(ms - ms % 1000).replace("T", " ").replace(".000Z", "Z")


def _area(ax: Any, area: Area, name: str) -> Line2D:
    """The geofence as an ellipse in degrees (a circle on the ground), with a legend entry."""
    colour = AREA_COLOURS[name]
    height = 2 * area.radius_km / KM_PER_DEG
    width = height / max(0.01, math.cos(math.radians(area.center.lat)))
    ax.add_patch(Ellipse((area.center.lon, area.center.lat), width, height, fill=False, color=colour, lw=1.2))
    return Line2D(
        [], [], color=colour, marker="o", fillstyle="none", ls="", label=f"{name} area ({area.radius_km:g} km)"
    )


def route_png(motion: CrateMotion) -> bytes:
    """A PNG of the crate's route: each stretch with a fix as a line, the spans without a fix dashed grey,
    the shipment's geofences, the first and last fix, and the shocks at the fix before them."""
    figure = Figure(figsize=(7.4, 3.6), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    handles: list[Any] = []
    fixes = [fix for stretch in motion.track for fix in stretch]
    for i, stretch in enumerate(motion.track):
        (line,) = ax.plot([f[2] for f in stretch], [f[1] for f in stretch], color=TRACK_BLUE, lw=1.1, marker=".", ms=2)
        if i == 0:
            line.set_label("route (GPS fixes)")
            handles.append(line)
    for a, b in zip(motion.track, motion.track[1:], strict=False):
        ax.plot([a[-1][2], b[0][2]], [a[-1][1], b[0][1]], color="#6b7280", lw=0.9, ls="--")
    if len(motion.track) > 1:
        handles.append(Line2D([], [], color="#6b7280", ls="--", label="no fix (straight line between)"))
    for name, area in (("origin", motion.origin), ("destination", motion.destination)):
        if area is not None:
            handles.append(_area(ax, area, name))
    if fixes:
        ax.plot(fixes[0][2], fixes[0][1], marker="o", color="#1a7f37", ls="", ms=6)
        ax.plot(fixes[-1][2], fixes[-1][1], marker="s", color="#b42318", ls="", ms=6)
        handles += [
            Line2D([], [], marker="o", color="#1a7f37", ls="", label=f"first fix {_utc(fixes[0][0])}"),
            Line2D([], [], marker="s", color="#b42318", ls="", label=f"last fix {_utc(fixes[-1][0])}"),
        ]
        times = [f[0] for f in fixes]
        for shock in motion.shocks:
            at = fixes[max(0, bisect.bisect_right(times, shock.ts_ms) - 1)]
            ax.plot(at[2], at[1], marker="x", color="#ff7f0e", ms=8, mew=2, ls="")
        if motion.shocks:
            handles.append(Line2D([], [], marker="x", color="#ff7f0e", mew=2, ls="", label="shock (at the fix before)"))
        ax.set_aspect(
            1 / max(0.01, math.cos(math.radians(sum(f[1] for f in fixes) / len(fixes)))), adjustable="datalim"
        )
    else:
        ax.text(0.5, 0.5, "no GPS fix in this window", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    return finished_png(figure, ax, handles, f"{motion.crate}: {motion.fixes} fixes")


def _table(rows: list[list[Any]], grid: TableStyle, widths: list[float] | None = None) -> LongTable:
    table = LongTable(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(grid)
    return table


def route_section(motion: CrateMotion, grid: TableStyle, h2: ParagraphStyle, body: ParagraphStyle) -> list[Flowable]:
    """One crate's route plot, time per phase with each phase's span, tilts beyond the limit and shocks."""
    story: list[Flowable] = [
        KeepTogether(
            [
                Paragraph(f"Route and handling: crate {motion.crate}", h2),
                Image(io.BytesIO(route_png(motion)), width=17 * cm, height=17 * cm * 3.6 / 7.4),
            ]
        )
    ]
    if motion.origin is None and motion.destination is None:
        note = "The shipment's record has no geofences: the whole window counts as transit."
    else:
        note = "Phases from the shipment's geofences and the latest fix (before the first fix: transit)."
    totals = ", ".join(f"{phase} {format_duration(motion.time_in(phase))}" for phase in PHASES)
    story.append(Paragraph(f"Time in each phase: {totals}. {note}", body))
    phase_rows: list[list[Any]] = [["phase", "from (UTC)", "to (UTC)", "lasted"]]
    phase_rows += [[s.phase, _utc(s.start_ms), _utc(s.end_ms), format_duration(s.duration_ms)] for s in motion.phases]
    story.append(_table(phase_rows, grid, [3.0 * cm, 4.2 * cm, 4.2 * cm, 2.6 * cm]))
    if motion.tipped_deg is None:
        story.append(Paragraph("Tilts: the profile sets no tilt limit to judge them against.", body))
    elif motion.tilts:
        tilt_rows: list[list[Any]] = [
            [f"tipped beyond {motion.tipped_deg:g}°: from (UTC)", "to (UTC)", "lasted", "at most"]
        ]
        for t in motion.tilts:
            end = "still tipped at the end" if t.end_ms is None else _utc(t.end_ms)
            lasted = "" if t.end_ms is None else format_duration(t.end_ms - t.start_ms)
            tilt_rows.append([_utc(t.start_ms), end, lasted, f"{t.peak_deg:.1f}°"])
        story.append(_table(tilt_rows, grid, [5.4 * cm, 4.2 * cm, 2.6 * cm, 2.0 * cm]))
    else:
        story.append(Paragraph(f"Tilts: the crate never stood beyond {motion.tipped_deg:g}° from vertical.", body))
    if motion.shocks:
        shock_rows: list[list[Any]] = [["shock (UTC)", "g", "tilt after"]]
        for x in motion.shocks:
            shock_rows.append([_utc(x.ts_ms), f"{x.shock_g:.2f}", "" if x.tilt_deg is None else f"{x.tilt_deg:.1f}°"])
        story.append(_table(shock_rows, grid, [4.2 * cm, 2.0 * cm, 2.6 * cm]))
    else:
        story.append(Paragraph("Shocks: none reported (the agent reports 2 g and more).", body))
    return story
