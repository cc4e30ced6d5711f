"""The release report as a PDF: reportlab lays out the document, matplotlib (Agg, no display) draws the charts.

Only this module imports either library, and only ``coldchain report --format pdf`` imports it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Image, KeepTogether, LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from cli.progress import Progress
from cli.report import Report
from cli.window import format_duration, iso
from coldchain.digest import FORMAT_VERSION
from coldchain.profiles import ThresholdRule
from coldchain.stats import SensorSummary

__all__ = ["render_pdf"]

SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
MAX_REASONS = 6
CHART_BUCKETS = 1500  # about the chart's width in pixels
OK_GREEN = colors.HexColor("#1a7f37")
REVIEW_RED = colors.HexColor("#b42318")
GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eaed")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa0a6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
)


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _utc(ms: int) -> str:
    return iso(ms).replace("T", " ").replace(".000Z", "Z")


def _envelope(samples: Sequence[tuple[int, float]], buckets: int = CHART_BUCKETS) -> list[tuple[int, float]]:
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


def _chart(summary: SensorSummary, samples: Sequence[tuple[int, float]], rules: Sequence[ThresholdRule]) -> bytes:
    """A PNG of one probe's temperature with its limits as bands and its excursions shaded."""
    samples = _envelope(samples)
    figure = Figure(figsize=(7.4, 2.7), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    times = [_when(ts) for ts, _ in samples]
    values = [v for _, v in samples]
    limits = [r.threshold_c for r in rules]
    low, high = min([*values, *limits]), max([*values, *limits])
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
    for exposure in summary.rules:
        colour = SEVERITY_COLOURS.get(exposure.rule.severity, "#7f7f7f")
        for excursion in exposure.excursions:
            ax.axvspan(_when(excursion.start_ms), _when(excursion.end_ms), color=colour, alpha=0.30, linewidth=0)
    (line,) = ax.plot(times, values, color="#1f3b73", linewidth=0.9, label=summary.sensor)
    handles.insert(0, line)
    if any(e.excursions for e in summary.rules):
        handles.append(Patch(color="#d62728", alpha=0.30, label="excursion (shaded)"))
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


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> LongTable:
    table = LongTable(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    return table


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def render_pdf(report: Report, path: Path, progress: Progress) -> None:
    """Write the report as a PDF to ``path``."""
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=9, leading=11.5, alignment=TA_LEFT)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=9.5)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4)
    record, ident = report.record, report.identity
    rules = record.rules
    story: list[Any] = []

    title = f"Cold-chain release report: {ident.kind} {ident.subject}"
    story.append(Paragraph(escape(title), styles["Title"]))
    ok = report.verdict.within_profile
    verdict_style = ParagraphStyle(
        "verdict", parent=body, fontSize=14, leading=18, textColor=colors.white, fontName="Helvetica-Bold"
    )
    verdict_rows: list[list[Any]] = [[_p(f"Verdict: {report.verdict.line}", verdict_style)]]
    reasons = list(report.verdict.reasons)
    if len(reasons) > MAX_REASONS:  # the tables below list every excursion and alarm
        reasons = [*reasons[:MAX_REASONS], f"... and {len(reasons) - MAX_REASONS} more (see below)"]
    white = ParagraphStyle("reason", parent=cell, textColor=colors.white)
    verdict_rows += [[_p(reason, white)] for reason in reasons]

    verdict = LongTable(verdict_rows, colWidths=[17 * cm], hAlign="LEFT")
    verdict.setStyle(
        TableStyle(
            [("BACKGROUND", (0, 0), (-1, -1), OK_GREEN if ok else REVIEW_RED), ("LEFTPADDING", (0, 0), (-1, -1), 8)]
        )
    )
    story += [verdict, Spacer(1, 8)]

    profile = record.profile
    identity_rows = [
        ["Shipment" if ident.kind == "shipment" else "Crate", ident.subject],
        ["Crates", ", ".join(ident.crates)],
        ["Product", ident.product or "not recorded"],
        ["Route", f"{ident.origin or 'origin not recorded'} -> {ident.destination or 'destination not recorded'}"],
        ["Profile", f"{profile.name}: {profile.description}" if profile else "none (no limits applied)"],
        ["First reading", _utc(min(s.first_ms for s in record.summaries))],
        ["Last reading", _utc(max(s.last_ms for s in record.summaries))],
        [
            "Window",
            f"{_utc(record.start_ms)} to {_utc(record.end_ms)} ({format_duration(record.end_ms - record.start_ms)})",
        ],
        ["Record", report.source],
        ["Generated", _utc(report.generated_ms)],
    ]
    story.append(_table([["Identity", ""], *[[k, _p(v, cell)] for k, v in identity_rows]], [3.5 * cm, 13.5 * cm]))

    story.append(Paragraph("Limits", h2))
    if rules:
        limit_rows: list[list[Any]] = [["rule", "severity", "limit", "delay", "hysteresis"]]
        limit_rows += [
            [
                r.name,
                r.severity,
                f"{'>' if r.kind == 'high' else '<'} {r.threshold_c:g} °C",
                f"{r.delay_s:g} s",
                f"{r.hysteresis_c:g} °C",
            ]
            for r in rules
        ]
        story.append(_table(limit_rows))
    else:
        story.append(_p("No profile: readings were not judged against limits.", body))

    story.append(Paragraph("Per probe", h2))
    probe_rows: list[list[Any]] = [
        ["probe", "readings", "min °C", "max °C", "mean °C", "MKT °C", "out of range", "excursions"]
    ]
    for s in record.summaries:
        excursions = ", ".join(f"{len(e.excursions)} {e.rule.name}" for e in s.rules if e.excursions) or "none"
        probe_rows.append(
            [
                s.sensor,
                s.count,
                f"{s.min_c:.2f}",
                f"{s.max_c:.2f}",
                f"{s.mean_c:.2f}",
                f"{s.mkt_c:.2f}",
                format_duration(s.out_of_range_ms),
                _p(excursions, cell),
            ]
        )
    story.append(_table(probe_rows, [3.2 * cm, 1.6 * cm, 1.5 * cm, 1.5 * cm, 1.6 * cm, 1.6 * cm, 2.0 * cm, 4.0 * cm]))
    story.append(
        _p(
            "Out of range: time outside the critical limits (each reading holds until the next, at most "
            f"{format_duration(record.max_hold_ms)}). MKT: mean kinetic temperature, USP <1079.2>, "
            "activation energy 83.144 kJ/mol, time-weighted. "
            "An excursion is a breach lasting at least the rule's delay.",
            small,
        )
    )

    excursion_rows: list[list[Any]] = [["probe", "rule", "severity", "from (UTC)", "to (UTC)", "lasted", "peak °C"]]
    for s in record.summaries:
        for rule, x in s.excursions:
            excursion_rows.append(
                [s.sensor, rule.name, rule.severity, _utc(x.start_ms), _utc(x.end_ms), format_duration(x.duration_ms),
                 f"{x.peak_c:.2f}"]
            )  # fmt: skip
    story.append(Paragraph("Excursions", h2))
    if len(excursion_rows) > 1:
        story.append(_table(excursion_rows))
    else:
        story.append(_p("No limit was breached for its delay.", body))

    if record.faults:
        story.append(Paragraph("Probe faults", h2))
        fault_rows: list[list[Any]] = [["probe", "fault", "readings", "first (UTC)", "last (UTC)"]]
        groups: dict[tuple[str, str], list[int]] = {}
        for f in record.faults:
            groups.setdefault((record.label(f), f.fault), []).append(f.ts_ms)
        for (probe, fault), times in sorted(groups.items()):
            fault_rows.append([probe, fault, len(times), _utc(min(times)), _utc(max(times))])
        story.append(_table(fault_rows))

    story.append(Paragraph("Cumulative time out of range", h2))
    if report.budgets:
        budget_rows: list[list[Any]] = [["rule", "severity", "range", "used", "budget", "state"]]
        for b in report.budgets:
            low = "-inf" if b.rule.low_c is None else f"{b.rule.low_c:g}"
            high = "+inf" if b.rule.high_c is None else f"{b.rule.high_c:g}"
            span = f"outside {low} .. {high} °C"
            budget_rows.append(
                [
                    b.rule.name,
                    b.rule.severity,
                    span,
                    format_duration(b.used_ms),
                    format_duration(int(b.rule.budget_s * 1000)),
                    "EXCEEDED" if b.exceeded else "within",
                ]
            )
        story.append(_table(budget_rows))
    else:
        total = max((s.out_of_range_ms for s in record.summaries), default=0)
        story.append(_p(f"{format_duration(total)} outside the critical limits; the profile sets no budget.", body))

    for index, summary in enumerate(record.summaries, 1):
        progress.update(f"drawing chart {index}/{len(record.summaries)}", force=True)
        crate, _, sensor = summary.sensor.rpartition("/")
        samples = [
            (r.ts_ms, r.value_c) for r in record.readings if r.sensor == sensor and (not crate or r.crate == crate)
        ]
        png = _chart(summary, samples, rules)
        story.append(
            KeepTogether(
                [
                    Paragraph(f"Probe {escape(summary.sensor)}", h2),
                    Image(io.BytesIO(png), width=17 * cm, height=17 * cm * 2.7 / 7.4),
                ]
            )
        )

    story.append(Paragraph("Alarm transitions", h2))
    if report.alarms:
        alarm_rows: list[list[Any]] = [
            ["time (UTC)", "crate", "rule / sensor", "severity", "state", "value °C", "by", "note"]
        ]
        for a in report.alarms:
            value = "" if a.value_c is None else f"{a.value_c:.2f}"
            alarm_rows.append(
                [
                    _utc(a.ts_ms),
                    a.crate,
                    _p(f"{a.rule} / {a.sensor}", cell),
                    a.severity,
                    a.state,
                    value,
                    _p(a.by or "", cell),
                    _p(a.note or "", cell),
                ]
            )
        story.append(
            _table(alarm_rows, [3.2 * cm, 1.8 * cm, 2.8 * cm, 1.4 * cm, 2.2 * cm, 1.4 * cm, 1.6 * cm, 2.6 * cm])
        )
    else:
        story.append(_p("No alarm was recorded in this window.", body))

    story.append(Paragraph("Data gaps", h2))
    if report.gaps:
        gap_rows: list[list[Any]] = [["recorded (UTC)", "crate", "seq", "state", "still missing"]]
        for g in report.gaps:
            gap_rows.append(
                [
                    _utc(g.ts_ms),
                    g.crate,
                    f"{g.first_seq} .. {g.last_seq}",
                    g.state or "",
                    "" if g.missing is None else g.missing,
                ]
            )
        story.append(_table(gap_rows))
    else:
        story.append(_p("The gateway recorded no data gap: no message went missing.", body))

    story.append(Paragraph("Data integrity", h2))
    story.append(Paragraph(f"SHA-256 of the data: <font name='Courier'>{report.sha256}</font>", body))
    story.append(
        _p(
            f"Computed over canonical serialisation v{FORMAT_VERSION} (coldchain-report-data, docs/queries.md) of the "
            f"{len(record.readings)} readings, {len(record.faults)} probe faults, "
            f"{len(report.alarms)} alarm transitions and "
            f"{len(report.gaps)} gap records above, from the record named under Identity. "
            "Recompute it from InfluxDB to check that neither this report nor the data was altered.",
            small,
        )
    )

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(
            2 * cm, 1.2 * cm, f"coldchain report: {ident.kind} {ident.subject}  -  data SHA-256 {report.sha256[:16]}..."
        )
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"page {doc.page}")
        canvas.restoreState()

    progress.update("writing PDF", force=True)
    document = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=1.8 * cm, bottomMargin=2 * cm,
        title=title, author="coldchain", subject=f"{report.verdict.line}; data SHA-256 {report.sha256}",
    )  # fmt: skip
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    progress.done(f"wrote {path}")
