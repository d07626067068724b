"""Which span produced a given response, for feedback given with the response object.

``closedloop.feedback.record(response, ...)`` is the easiest way to attach feedback in the
process that made the call; this bounded map from provider response id to span context
makes it possible without touching the SDK's objects.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry.trace import SpanContext

_MAX_ENTRIES = 10_000
_lock = threading.Lock()
_by_response_id: OrderedDict[str, SpanContext] = OrderedDict()


def remember(response_id: str, span_context: SpanContext) -> None:
    with _lock:
        _by_response_id[response_id] = span_context
        _by_response_id.move_to_end(response_id)
        if len(_by_response_id) > _MAX_ENTRIES:
            _by_response_id.popitem(last=False)


def span_context_for(response_id: str) -> SpanContext | None:
    """The span of a recent call (the last 10,000 in this process) that returned this id."""
    with _lock:
        return _by_response_id.get(response_id)
