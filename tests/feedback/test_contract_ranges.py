"""Feedback outside Contract 2's value ranges is refused at the call, naming the fix."""

from __future__ import annotations

import datetime
import time

import pytest

import closedloop.feedback as fb

TRACE = "ab" * 16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fb.record(TRACE, "rating", 7), "'rating' value=7 is out of range"),
        (lambda: fb.record(TRACE, "rating", 3.5), "rating takes a whole number from 1 to 5"),
        (lambda: fb.record(TRACE, "thumbs", 7), "'thumbs' value=7 is out of range"),
        (lambda: fb.record(TRACE, "edit_ratio", 1.5), "edit_ratio takes a number from 0 to 1"),
        (lambda: fb.record(TRACE, "safety", label="severe"), "use one of none, low, medium"),
        (
            lambda: fb.thumbs(TRACE, True, timestamp=time.time() * 1000),
            "Milliseconds? Divide by 1000.",
        ),
        (lambda: fb.thumbs(TRACE, True, timestamp=1_000.0), "is before 2000-01-01"),
        (
            lambda: fb.thumbs(
                TRACE,
                True,
                timestamp=datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc),
            ),
            "is in the future",
        ),
    ],
)
def test_feedback_outside_contract_ranges_is_refused(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value)


def test_feedback_inside_the_ranges_is_accepted(exporter, instrumented):
    for name, value in (("thumbs", 0), ("thumbs", True), ("rating", 5.0), ("edit_ratio", 0.25)):
        assert fb.record(TRACE, name, value) is not None
    assert fb.record(TRACE, "safety", label="high") is not None
