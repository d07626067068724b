"""One reading of typed durations for every option that takes one."""

from __future__ import annotations

import pytest

from closedloop._durations import seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("12h", 43_200.0), ("3d", 259_200.0),
     (" 1.5m ", 90.0), ("45", 45.0)],
)  # fmt: skip
def test_units(text: str, expected: float) -> None:
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "m", "3 d", "-1s", "2w", "1e3s", "2026-01-01"])
def test_not_a_duration(text: str) -> None:
    assert seconds(text) is None


def test_a_unit_can_be_required() -> None:
    assert seconds("30", unit_required=True) is None
    assert seconds("30m", unit_required=True) == 1800.0
