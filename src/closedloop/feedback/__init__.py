"""Feedback by trace id: explicit, implicit and outcome signals, from any process.

closedloop.feedback.thumbs(trace_id, up=False)
closedloop.feedback.rating(trace_id, 4)
closedloop.feedback.outcome(trace_id, "ticket_reopened", True)
"""

from closedloop.feedback.flows import Flow, FlowTracker, flow
from closedloop.feedback.implicit import RetryDetector, edit_ratio, record_edit
from closedloop.feedback.recorder import (
    KINDS,
    Recorded,
    comment,
    emit,
    outcome,
    rating,
    record,
    thumbs,
)
from closedloop.feedback.targets import Target, resolve
from closedloop.feedback.tokens import ExpiredToken, FeedbackGrant, InvalidToken, token, verify

__all__ = [
    "KINDS",
    "ExpiredToken",
    "FeedbackGrant",
    "Flow",
    "FlowTracker",
    "InvalidToken",
    "Recorded",
    "RetryDetector",
    "Target",
    "comment",
    "edit_ratio",
    "emit",
    "flow",
    "outcome",
    "rating",
    "record",
    "record_edit",
    "resolve",
    "thumbs",
    "token",
    "verify",
]
