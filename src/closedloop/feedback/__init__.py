"""Feedback by call id: explicit, implicit and outcome signals, from any process.

call = closedloop.feedback.call_id(reply)  # store with the answer: "trace_id:span_id"
closedloop.feedback.thumbs(call, up=False)
closedloop.feedback.rating(call, 4)
closedloop.feedback.safety(call, "medium")
closedloop.feedback.outcome(call, "ticket_reopened", True)

See docs/feedback.md.
"""

from closedloop.feedback._flows import Flow, FlowState, FlowTracker, flow
from closedloop.feedback._implicit import RetryDetector, edit_ratio, record_edit
from closedloop.feedback._recorder import (
    KINDS,
    SAFETY_LEVELS,
    FeedbackKind,
    Recorded,
    SafetyLevel,
    comment,
    outcome,
    rating,
    record,
    safety,
    thumbs,
)
from closedloop.feedback._targets import FeedbackTarget, IdentifiedResponse, Target, call_id
from closedloop.feedback._tokens import ExpiredToken, FeedbackGrant, InvalidToken, token, verify

__all__ = [
    "KINDS",
    "SAFETY_LEVELS",
    "ExpiredToken",
    "FeedbackGrant",
    "FeedbackKind",
    "FeedbackTarget",
    "Flow",
    "FlowState",
    "FlowTracker",
    "IdentifiedResponse",
    "InvalidToken",
    "Recorded",
    "RetryDetector",
    "SafetyLevel",
    "Target",
    "call_id",
    "comment",
    "edit_ratio",
    "flow",
    "outcome",
    "rating",
    "record",
    "record_edit",
    "safety",
    "thumbs",
    "token",
    "verify",
]
