"""A trace's spans as a tree on a timeline (SVG): each span a bar from its start to its
end, indented under its parent, children in start order."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Final

from closedloop.server._ui_html import esc

WIDTH: Final = 960
LABEL_W: Final = 300
ROW_H: Final = 22
INDENT: Final = 14
_ids = itertools.count()


def instant_ns(text: str) -> int:
    """The API's ``2025-06-01T12:57:36.001000000Z`` as nanoseconds since the epoch."""
    base, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def tree_order(spans: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """(depth, span) depth first; a span whose parent is not in the trace is a root."""
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, Mapping[str, Any]]] = []
    stack = [(0, span) for span in reversed(children.get(None, []))]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        stack.extend((depth + 1, child) for child in reversed(children.get(span["span_id"], [])))
    return ordered


def timeline(spans: Sequence[Mapping[str, Any]]) -> str:
    """The span tree as labelled bars; each bar links to the span's details below."""
    chart_id = f"timeline-{next(_ids)}"
    rows = tree_order(spans)
    starts = [instant_ns(span["start"]) for _, span in rows]
    ends = [s + span["duration_ns"] for s, (_, span) in zip(starts, rows, strict=True)]
    first, last = min(starts, default=0), max(ends, default=1)
    total = max(last - first, 1)
    bar_w = WIDTH - LABEL_W - 8
    height = ROW_H * len(rows) + 8
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t" data-marks="{len(rows)}">'
        f'<title id="{chart_id}-t">Spans of the trace on a timeline, '
        f"{total / 1e6:,.1f} ms in all</title>"
    ]
    for n, ((depth, span), start) in enumerate(zip(rows, starts, strict=True)):
        y = n * ROW_H + 4
        x = LABEL_W + bar_w * (start - first) / total
        w = max(bar_w * span["duration_ns"] / total, 2)
        status = "error" if span["status"]["code"] == "error" else span["kind"]
        parts.append(
            f'<a href="#span-{esc(span["span_id"])}">'
            f'<text class="label" x="{4 + depth * INDENT}" y="{y + 15}">'
            f"{esc(_cut(span['name'], 40 - depth * 2))}</text>"
            f'<rect class="mark bar {esc(status)}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
            f'height="{ROW_H - 6}"><title>{esc(span["name"])}: '
            f"{span['duration_ns'] / 1e6:,.3f} ms</title></rect></a>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: max(most - 1, 1)] + "\u2026"
