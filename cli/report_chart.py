"""One probe's chart for the release report (matplotlib, Agg: no display): limits as bands, excursions
shaded, and the line broken and hatched grey where the record holds no reading."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from coldchain.profiles import ThresholdRule
from coldchain.record.completeness import Hole
from coldchain.record.out_of_range import merge_intervals
from coldchain.record.stats import SensorSummary

__all__ = ["chart_png", "envelope"]

SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
CHART_BUCKETS = 1500  # about the chart's width in pixels
NO_DATA_GREY = "#6b7280"


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def envelope(samples: Sequence[tuple[int, float]], buckets: int = CHART_BUCKETS) -> list[tuple[int, float]]:
    """At most two points per bucket (its lowest and highest, in time order): a 14-day trace draws
    in a fraction of the time, and no spike is smoothed away."""
    if len(samples) <= 2 * buckets:
        return list(samples)
    size = -(-len(samples) // buckets)
    out: list[tuple[int, float]] = []
    for i in range(0, len(samples), size):
        chunk = samples[i : i + size]
        low, high = min(chunk, key=lambda s: s[1]), max(chunk, key=lambda s: s[1])
        out += sorted({low, high})
    return out


def _segments(
    samples: Sequence[tuple[int, float]], holes: Sequence[Hole], max_hold_ms: int
) -> list[list[tuple[int, float]]]:
    """The runs of readings the line may join: it breaks where readings are further apart than a reading
    stands for (``max_hold_ms``, as in the statistics) or where a hole of the record lies between them."""
    runs: list[list[tuple[int, float]]] = []
    for sample in samples:
        if runs:
            last = runs[-1][-1][0]
            inside = any(last < h.end_ms and h.start_ms < sample[0] and h.duration_ms for h in holes)
            if sample[0] - last <= max_hold_ms and not inside:
                runs[-1].append(sample)
                continue
        runs.append([sample])
    return runs


def _no_data(runs: list[list[tuple[int, float]]], holes: Sequence[Hole]) -> list[tuple[int, int]]:
    """The spans to shade: between the runs of the line, and every hole of the record."""
    spans = [(a[-1][0], b[0][0]) for a, b in itertools.pairwise(runs)]
    return merge_intervals([*spans, *((h.start_ms, h.end_ms) for h in holes if h.duration_ms)])


def chart_png(
    summary: SensorSummary,
    samples: Sequence[tuple[int, float]],
    rules: Sequence[ThresholdRule],
    holes: Sequence[Hole],
    max_hold_ms: int,
) -> bytes:
    """A PNG of one probe's temperature with its limits as bands, its excursions shaded and the line broken
    (and hatched grey) where the record holds no reading."""
    runs = _segments(samples, holes, max_hold_ms)
    total = max(1, len(samples))
    times: list[datetime] = []
    values: list[float] = []
    for run in runs:  # NaN between runs: matplotlib leaves the line open there
        for ts, value in envelope(run, max(1, CHART_BUCKETS * len(run) // total)):
            times.append(_when(ts))
            values.append(value)
        times.append(_when(run[-1][0]))
        values.append(math.nan)
    figure = Figure(figsize=(7.4, 2.7), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    limits = [r.threshold_c for r in rules]
    known = [v for v in values if not math.isnan(v)]
    low, high = min([*known, *limits]), max([*known, *limits])
    pad = max(1.0, (high - low) * 0.08)
    bottom, top = low - pad, high + pad
    handles: list[Any] = []
    for rule in sorted(rules, key=lambda r: r.severity != "warning"):  # critical drawn over warning
        colour = SEVERITY_COLOURS.get(rule.severity, "#7f7f7f")
        span = (rule.threshold_c, top) if rule.kind == "high" else (bottom, rule.threshold_c)
        ax.axhspan(*span, color=colour, alpha=0.10, linewidth=0)
        ax.axhline(rule.threshold_c, color=colour, linestyle="--", linewidth=0.8)
        sign = ">" if rule.kind == "high" else "<"
        handles.append(Patch(color=colour, alpha=0.35, label=f"{rule.name} {sign} {rule.threshold_c:g} °C"))
    # The x values are datetimes: matplotlib's unit registry makes this a date axis, but its annotations
    # declare x as float only, hence the three ``ignore[arg-type]`` below.
    for exposure in summary.rules:
        colour = SEVERITY_COLOURS.get(exposure.rule.severity, "#7f7f7f")
        for excursion in exposure.excursions:
            ax.axvspan(_when(excursion.start_ms), _when(excursion.end_ms), color=colour, alpha=0.30, linewidth=0)  # type: ignore[arg-type]
    silent = _no_data(runs, holes)
    for lo, hi in silent:
        ax.axvspan(_when(lo), _when(hi), facecolor=NO_DATA_GREY, alpha=0.18, hatch="///", edgecolor=NO_DATA_GREY)  # type: ignore[arg-type]
    (line,) = ax.plot(times, values, color="#1f3b73", linewidth=0.9, label=summary.sensor)  # type: ignore[arg-type]
    handles.insert(0, line)
    if any(e.excursions for e in summary.rules):
        handles.append(Patch(color="#d62728", alpha=0.30, label="excursion (shaded)"))
    if silent:
        handles.append(Patch(facecolor=NO_DATA_GREY, alpha=0.3, hatch="///", label="no data (hatched)"))
    ax.set_ylim(bottom, top)
    ax.set_ylabel("°C")
    locator = AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("UTC")
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6.5, frameon=False)
    ax.set_title(f"{summary.sensor}: {summary.count} readings", fontsize=9, loc="left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
