"""latency: whole milliseconds of the running window, in arrival order."""

from __future__ import annotations

import pytest

from closedloop.sampling import Decision

from .support import MS, decide, policy, view

SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED


@pytest.mark.parametrize(
    ("duration_ns", "expected"),
    [(10 * MS, NOT_SAMPLED), (11 * MS - 1, NOT_SAMPLED), (11 * MS, SAMPLED)],
)
def test_latency_truncates_to_whole_ms_and_lower_bound_is_exclusive(
    duration_ns: int, expected: Decision
) -> None:
    span = view(start_ns=5_000 * MS, end_ns=5_000 * MS + duration_ns)
    assert decide(policy("latency", threshold_ms=10), span) is expected


def test_latency_spans_earliest_start_to_latest_end() -> None:
    first = view(span_id=1, start_ns=1_000 * MS, end_ns=1_004 * MS)
    second = view(span_id=2, start_ns=1_010 * MS, end_ns=1_015 * MS)
    # each span is 4-5 ms, the trace is 15 ms
    assert decide(policy("latency", threshold_ms=14), first, second) is SAMPLED
    assert decide(policy("latency", threshold_ms=15), first, second) is NOT_SAMPLED


def test_latency_upper_bound_is_inclusive() -> None:
    bounded = policy("latency", threshold_ms=10, upper_threshold_ms=20)
    for millis, expected in [(10, NOT_SAMPLED), (11, SAMPLED), (20, SAMPLED), (21, NOT_SAMPLED)]:
        span = view(start_ns=1_000 * MS, end_ns=(1_000 + millis) * MS)
        assert decide(bounded, span) is expected, millis


def test_latency_is_checked_on_the_running_window_in_arrival_order() -> None:
    bounded = policy("latency", threshold_ms=10, upper_threshold_ms=20)
    short = view(span_id=1, start_ns=1_000 * MS, end_ns=1_015 * MS)  # 15 ms: in range
    long = view(span_id=2, start_ns=1_000 * MS, end_ns=1_500 * MS)  # the trace is 500 ms
    assert decide(bounded, short, long) is SAMPLED  # sampled on the prefix
    assert decide(bounded, long, short) is NOT_SAMPLED
