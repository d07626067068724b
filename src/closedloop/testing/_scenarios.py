"""Failure scenarios chosen by the request's ``model``, so any process can trigger them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closedloop.testing._replies import (
    JSONReply,
    Reply,
    SSEEvent,
    StreamReply,
    error_body,
    error_reply,
    sse_json,
)

RATE_LIMIT_MODEL = "error-429"
SERVER_ERROR_MODEL = "error-500"
MALFORMED_MODEL = "error-malformed"
MIDSTREAM_MODEL = "error-midstream"

MALFORMED_BODY = '{"id": "chatcmpl-broken", "choices": ['
CONTENT_EVENTS_BEFORE_INTERRUPT = 2
# The SDK honours retry-after-ms first; 1 ms keeps default-retry clients fast.
RATE_LIMIT_HEADERS = (("retry-after", "0"), ("retry-after-ms", "1"))


def canned_reply(request: Mapping[str, Any]) -> Reply | None:
    """The reply for an error model that never reaches an endpoint, else None."""
    model = request.get("model")
    if model == RATE_LIMIT_MODEL:
        return error_reply(
            429,
            "Rate limit reached for requests.",
            "requests",
            code="rate_limit_exceeded",
            headers=RATE_LIMIT_HEADERS,
        )
    if model == SERVER_ERROR_MODEL:
        return error_reply(
            500, "The server had an error while processing your request.", "server_error"
        )
    if model == MALFORMED_MODEL:
        if request.get("stream"):
            return StreamReply((SSEEvent(MALFORMED_BODY),))
        return JSONReply(MALFORMED_BODY.encode())
    return None


def adjust(request: Mapping[str, Any], reply: Reply) -> Reply:
    """Post-process an endpoint's reply for scenarios that need its real content."""
    if request.get("model") == MIDSTREAM_MODEL and isinstance(reply, StreamReply):
        return _interrupt(reply)
    return reply


def _interrupt(reply: StreamReply) -> StreamReply:
    """Cut the stream after two content events and append an in-band error event."""
    content_positions = [i for i, event in enumerate(reply.events) if event.carries_content]
    kept = content_positions[:CONTENT_EVENTS_BEFORE_INTERRUPT]
    cut = kept[-1] + 1 if kept else 0
    failure = sse_json(error_body("stream interrupted", "server_error"))
    return StreamReply((*reply.events[:cut], failure))
