"""The release report as a PDF: reportlab lays out the document, matplotlib (Agg, no display) draws the charts.

Only this module, ``cli.report_chart`` and ``cli.report_route`` import either library, and only
``coldchain report --format pdf`` imports them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from adapters.influx_rows import AlarmRow
from cli.progress import Progress
from cli.report import Report
from cli.report_chart import chart_png
from cli.report_route import route_section
from cli.window import format_duration, iso
from coldchain.record.completeness import TIME
from coldchain.record.digest import FORMAT_VERSION
from coldchain.record.verdict import INCOMPLETE, WITHIN_PROFILE

__all__ = ["render_pdf"]

MAX_REASONS = 6
OK_GREEN = colors.HexColor("#1a7f37")
REVIEW_RED = colors.HexColor("#b42318")
INCOMPLETE_AMBER = colors.HexColor("#b54708")
VERDICT_COLOURS = {WITHIN_PROFILE: OK_GREEN, INCOMPLETE: INCOMPLETE_AMBER}
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


def _utc(ms: int) -> str:
    return iso(ms).replace("T", " ").replace(".000Z", "Z")


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> LongTable:
    table = LongTable(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    return table


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _state(alarm: AlarmRow, style: ParagraphStyle) -> Paragraph:
    """The transition, and when the alarm it raised was escalated (the same row: it is one excursion)."""
    text = escape(alarm.transition)
    if alarm.escalated_ts:
        text += f"<br/>escalated {escape(_utc(alarm.escalated_ts))}"
    return Paragraph(text, style)


def _holes_table(report: Report, cell: ParagraphStyle, body: ParagraphStyle) -> list[Flowable]:
    """Page 1: every hole of the record with its start, end and duration, so QA sees why it is incomplete."""
    holes = report.verdict.holes
    if not holes:
        return []
    rows: list[list[Any]] = [["kind", "where", "from (UTC)", "to (UTC)", "lasted", "what"]]
    for h in holes:
        rows.append(
            [h.kind, _p(h.where, cell), _p(_utc(h.start_ms), cell), _p(_utc(h.end_ms), cell),
             format_duration(h.duration_ms), _p(h.detail, cell)]
        )  # fmt: skip
    title = _p(
        "The record is incomplete here: nothing shows what the product went through (kind time: nothing a "
        "clock anyone can check shows when its readings were taken).",
        body,
    )
    table = _table(rows, [1.1 * cm, 2.6 * cm, 3.5 * cm, 3.5 * cm, 1.3 * cm, 5.0 * cm])
    return [title, Spacer(1, 3), table, Spacer(1, 8)]


def _releases_table(report: Report, cell: ParagraphStyle) -> list[Flowable]:
    """Page 1: QA's release decisions on this subject, each marked whether it was taken on this very data."""
    if not report.releases:
        return []
    rows: list[list[Any]] = [["release (UTC)", "decision", "by", "note", "on data SHA-256"]]
    for x in report.releases:
        same = "this data" if x.sha256 == report.sha256 else f"other data: {x.sha256[:16]}..."
        rows.append([_p(_utc(x.ts_ms), cell), x.decision.upper(), _p(x.by, cell), _p(x.note, cell), _p(same, cell)])
    title = _p("Release decisions recorded for this subject (coldchain release):", cell)
    return [title, Spacer(1, 3), _table(rows, [3.0 * cm, 2.0 * cm, 2.4 * cm, 5.8 * cm, 3.8 * cm]), Spacer(1, 8)]


def render_pdf(report: Report, path: Path, progress: Progress) -> None:
    """Write the report as a PDF to ``path``."""
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=9, leading=11.5, alignment=TA_LEFT)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=9.5)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4)
    record, ident = report.record, report.identity
    rules = record.rules
    story: list[Flowable] = []

    title = f"Cold-chain release report: {ident.kind} {ident.subject}"
    story.append(Paragraph(escape(title), styles["Title"]))
    verdict_style = ParagraphStyle(
        "verdict", parent=body, fontSize=14, leading=18, textColor=colors.white, fontName="Helvetica-Bold"
    )
    verdict_rows: list[list[Any]] = [[_p(f"Verdict: {report.verdict.line}", verdict_style)]]
    hole_count = len(report.verdict.holes)
    reasons = list(report.verdict.reasons[: len(report.verdict.reasons) - hole_count])  # the holes have their own table
    if len(reasons) > MAX_REASONS:  # the tables below list every excursion and alarm
        reasons = [*reasons[:MAX_REASONS], f"... and {len(reasons) - MAX_REASONS} more (see below)"]
    if hole_count:
        reasons.append(f"the record has {hole_count} hole(s) where it says nothing about the product: listed below")
    white = ParagraphStyle("reason", parent=cell, textColor=colors.white)
    verdict_rows += [[_p(reason, white)] for reason in reasons]

    verdict = LongTable(verdict_rows, colWidths=[17 * cm], hAlign="LEFT")
    colour = VERDICT_COLOURS.get(report.verdict.line, REVIEW_RED)
    verdict.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour), ("LEFTPADDING", (0, 0), (-1, -1), 8)]))
    story += [verdict, Spacer(1, 8)]
    story += _holes_table(report, cell, body)
    story += _releases_table(report, cell)

    profile = record.profile
    identity_rows = [
        ["Shipment" if ident.kind == "shipment" else "Crate", ident.subject],
        [
            "Crates" if ident.kind == "shipment" else "Shipment",
            ", ".join(ident.crates)
            if ident.kind == "shipment"
            else ident.shipment or "none recorded (its readings carry no shipment tag)",
        ],
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
        # a run of corrected times has readings: the line is drawn through it, not broken and shaded as a silence
        holes = [
            h for h in report.verdict.holes if h.where in (summary.sensor, crate or ident.crates[0]) and h.kind != TIME
        ]
        png = chart_png(summary, samples, rules, holes, record.max_hold_ms)
        story.append(
            KeepTogether(
                [
                    Paragraph(f"Probe {escape(summary.sensor)}", h2),
                    Image(io.BytesIO(png), width=17 * cm, height=17 * cm * 2.7 / 7.4),
                ]
            )
        )

    for motion in report.motion:
        story += route_section(motion, GRID, h2, body)

    story.append(Paragraph("Alarm transitions", h2))
    if report.alarms:
        alarm_rows: list[list[Any]] = [
            ["time (UTC)", "crate", "rule / sensor", "severity", "state", "value °C", "by", "note"]
        ]
        for a in report.alarms:
            value = "" if a.value_c is None else f"{a.value_c:.2f}"
            alarm_rows.append(
                [
                    _p(_utc(a.ts_ms), cell),  # a Paragraph wraps within its column instead of running into the next
                    _p(a.crate, cell),
                    _p(f"{a.rule} / {a.sensor}", cell),
                    a.severity,
                    _state(a, cell),
                    value,
                    _p(a.by or "", cell),
                    _p(a.note or "", cell),
                ]
            )
        story.append(
            _table(alarm_rows, [2.6 * cm, 2.0 * cm, 2.6 * cm, 1.4 * cm, 2.9 * cm, 1.3 * cm, 1.6 * cm, 2.6 * cm])
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
            f"{len(record.readings)} readings, {len(record.faults)} probe faults (each with its time flag, if any), "
            f"{len(report.alarms)} alarm transitions and "
            f"{len(report.gaps)} gap records above, from the record named under Identity. "
            "Recompute it from InfluxDB to check that neither this report nor the data was altered.",
            small,
        )
    )

    def footer(canvas: Canvas, doc: BaseDocTemplate) -> None:
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
