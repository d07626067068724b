"""Charts as server-rendered SVG: no script, no library, nothing fetched, and readable
without colour (series also differ by dash, points carry their value in a tooltip).

Colours come from the stylesheet by class (``series-0`` ...), so the charts obey the
pages' strict content security policy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from closedloop.server._ui_html import Kind, esc, shown

WIDTH: Final = 640
HEIGHT: Final = 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 72, 16, 12, 36
SERIES_STYLES: Final = 8
"""Distinct series looks in the stylesheet; more series reuse them."""
_ids = itertools.count()


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per x label; None: no value there


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], kind: Kind) -> str:
    """One line per series over the ``labels`` (days, hours); an x with one point still
    draws that point."""
    chart_id = f"chart-{next(_ids)}"
    plotted = [v for s in series for v in s.values if v is not None]
    peak = max(plotted, default=0.0) or 1.0
    top = peak * 1.1
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return PAD_LEFT + (i * step if len(labels) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + inner_h * (1 - v / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t" data-marks="{len(plotted)}">'
        f'<title id="{chart_id}-t">{esc(title)}</title>'
    ]
    for value in (0.0, peak / 2, peak):
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="tick" x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{esc(shown(value, kind))}</text>"
        )
    every = max(1, len(labels) // 6)
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
                f"{esc(label)}</text>"
            )
    for n, line in enumerate(series):
        style = f"series-{n % SERIES_STYLES}"
        for run in _runs(line.values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            parts.append(f'<polyline class="line {style}" points="{points}"/>')
        for i, v in enumerate(line.values):
            if v is not None:
                parts.append(
                    f'<circle class="mark {style}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5">'
                    f"<title>{esc(line.name)}, {esc(labels[i])}: {esc(shown(v, kind))}</title>"
                    "</circle>"
                )
    if not plotted:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "no data</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Stretches of consecutive values: a line is not drawn across a missing day."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if len(run) > 1]


def legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<li><svg class="swatch" viewBox="0 0 24 8" aria-hidden="true">'
        f'<line class="line series-{n % SERIES_STYLES}" x1="0" x2="24" y1="4" y2="4"/></svg>'
        f"{esc(name)}</li>"
        for n, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


@dataclass(frozen=True)
class Interval:
    label: str
    value: float | None
    low: float | None
    high: float | None
    style: str  # "baseline", "candidate" or "difference"


def interval_chart(title: str, rows: Sequence[Interval], kind: Kind, zero: bool = False) -> str:
    """Estimates with their intervals on one shared axis; ``zero`` draws the no-change
    line a difference is read against."""
    chart_id = f"chart-{next(_ids)}"
    width, row_h, left, right = 300, 22, 8, 8
    height = row_h * len(rows) + 18
    ends = [v for r in rows for v in (r.low, r.high, r.value) if v is not None]
    if zero:
        ends.append(0.0)
    low, high = (min(ends), max(ends)) if ends else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def x(v: float) -> float:
        return left + (width - left - right) * (v - low) / (high - low)

    drawn = sum(1 for r in rows if r.value is not None)
    parts = [
        f'<svg class="chart interval" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t" data-marks="{drawn}">'
        f'<title id="{chart_id}-t">{esc(title)}</title>'
    ]
    if zero and low <= 0 <= high:
        parts.append(f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{height}"/>')
    for n, r in enumerate(rows):
        cy = row_h * n + row_h / 2 + 4
        if r.low is not None and r.high is not None:
            parts.append(
                f'<line class="ci {r.style}" x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" '
                f'y1="{cy:.1f}" y2="{cy:.1f}"/>'
            )
        if r.value is not None:
            interval = (
                f" [{shown(r.low, kind)}, {shown(r.high, kind)}]"
                if r.low is not None and r.high is not None
                else ""
            )
            parts.append(
                f'<circle class="mark {r.style}" cx="{x(r.value):.1f}" cy="{cy:.1f}" r="4">'
                f"<title>{esc(r.label)}: {esc(shown(r.value, kind))}{esc(interval)}</title>"
                "</circle>"
            )
    parts.append(
        f'<text class="tick" x="{left}" y="{height - 2}">{esc(shown(low, kind))}</text>'
        f'<text class="tick" x="{width - right}" y="{height - 2}" text-anchor="end">'
        f"{esc(shown(high, kind))}</text></svg>"
    )
    return "".join(parts)
