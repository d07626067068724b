"""Reading numbers back from a page: the exact value a cell carries, and the figure it
shows, each checked against the API's number."""

from __future__ import annotations

import json
import math
import re
from typing import Any

NOTHING = "\u2013"
_NUMBER = re.compile(r"-?[\d,]*\.?\d+(?:e[+-]?\d+)?")


def figure(text: str) -> tuple[float, float] | None:
    """A shown figure (``12.3 %``, ``$0.0123``, ``1,234 ms``, ``0.0012``) as (value,
    half of its last shown digit); None for the missing-value dash."""
    text = text.strip()
    if text == NOTHING:
        return None
    match = _NUMBER.search(text.replace("\u2212", "-"))
    assert match, f"no number in {text!r}"
    digits = match.group().replace(",", "")
    mantissa, _, exponent = digits.partition("e")
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent or 0)
    value, half = float(digits), 0.5 * 10.0**-decimals * scale
    if text.endswith("%"):
        value, half = value / 100, half / 100
    return value, half


def agrees(cell: Any, expected: float | None) -> None:
    """``cell`` (a Playwright locator) carries ``expected`` exactly in ``data-value`` and
    shows it, rounded."""
    exact = json.loads(cell.get_attribute("data-value"))
    shown = figure(cell.text_content())
    if expected is None:
        assert exact is None and shown is None, (cell.text_content(), expected)
        return
    # ClickHouse adds floats in no fixed order, so two runs of one query may differ in
    # the last bit: the page's own run and the test's API request are two runs.
    assert math.isclose(exact, expected, rel_tol=1e-9, abs_tol=1e-15), (exact, expected)
    assert shown is not None, (cell.text_content(), expected)
    value, half = shown
    if abs(expected) >= 1e3 and "e" not in cell.text_content():
        half = max(half, 0.5)
    assert math.isclose(value, expected, abs_tol=half * 1.0001 + 1e-12, rel_tol=5e-3), (
        cell.text_content(),
        expected,
    )


def drawn(svg: Any) -> int:
    """Marks (points, bars) an SVG chart holds."""
    return int(svg.locator(".mark").count())
