"""Go's number formatting, where closedloop must write or read numbers as Go code does
(the collector's pdata ``AsString``, OTTL's string conversion)."""

from __future__ import annotations

from decimal import Decimal


def shortest_fixed(value: float) -> str:
    """``strconv.FormatFloat(value, 'f', -1, 64)``: shortest round-trip digits, no exponent."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
