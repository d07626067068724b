"""Feedback by trace id: explicit, implicit and outcome signals, from any process.

closedloop.feedback.thumbs(trace_id, up=False)
closedloop.feedback.rating(trace_id, 4)
closedloop.feedback.outcome(trace_id, "ticket_reopened", True)
"""

from closedloop.feedback.recorder import (
    KINDS,
    Recorded,
    comment,
    outcome,
    rating,
    record,
    thumbs,
)
from closedloop.feedback.targets import Target, resolve

__all__ = [
    "KINDS",
    "Recorded",
    "Target",
    "comment",
    "outcome",
    "rating",
    "record",
    "resolve",
    "thumbs",
]
