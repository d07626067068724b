"""span_count: inclusive bounds, a 0 maximum is unbounded."""

from __future__ import annotations

import pytest

from closedloop.sampling import Decision

from .support import decide, policy, view


@pytest.mark.parametrize(("count", "expected"), [(1, False), (2, True), (3, True), (4, False)])
def test_span_count_bounds_are_inclusive(count: int, expected: bool) -> None:
    spans = [view(span_id=i + 1) for i in range(count)]
    result = decide(policy("span_count", min_spans=2, max_spans=3), *spans)
    assert result is (Decision.SAMPLED if expected else Decision.NOT_SAMPLED)


def test_span_count_max_zero_is_unbounded() -> None:
    spans = [view(span_id=i + 1) for i in range(100)]
    assert decide(policy("span_count", min_spans=2, max_spans=0), *spans) is Decision.SAMPLED
    assert decide(policy("span_count", min_spans=2), spans[0]) is Decision.NOT_SAMPLED
