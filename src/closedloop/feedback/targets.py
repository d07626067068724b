"""What feedback is about: a trace, a span, or a response object, resolved to ids.

Only ids are needed, so feedback works from any process, days later: the app stores the
trace id (``closedloop.current_trace_id()``) or ``trace_id:span_id`` with its own record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

from closedloop.instrumentation.recent_calls import span_context_for

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Target:
    """The evaluated span; ``span_id`` is None when only the trace is known."""

    trace_id: int
    span_id: int | None

    @property
    def trace_id_hex(self) -> str:
        return trace.format_trace_id(self.trace_id)

    def parent_context(self) -> SpanContext:
        """The parent for the feedback span.

        Without a span id, a stable synthetic one derived from the trace id keeps every
        trace-level signal under one (absent) parent; the store then attributes it to the
        trace's latest LLM call.
        """
        span_id = (
            self.span_id
            or int.from_bytes(hashlib.sha256(self.trace_id_hex.encode()).digest()[:8], "big")
            or 1
        )
        return SpanContext(
            self.trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )


def _from_text(text: str) -> Target:
    trace_part, _, span_part = text.strip().lower().partition(":")
    if not _TRACE_ID.match(trace_part) or int(trace_part, 16) == 0:
        raise ValueError(
            f"target {text!r} is not a trace id: expected 32 hex characters (as returned by "
            "closedloop.current_trace_id()), optionally followed by ':' and a 16-hex span id."
        )
    if span_part and (not _SPAN_ID.match(span_part) or int(span_part, 16) == 0):
        raise ValueError(
            f"target {text!r} has a malformed span id {span_part!r}: expected 16 hex characters."
        )
    return Target(int(trace_part, 16), int(span_part, 16) if span_part else None)


def _from_span_context(context: SpanContext) -> Target:
    if not context.is_valid:
        raise ValueError("target is an invalid span context (all-zero ids); pass a real one.")
    return Target(context.trace_id, context.span_id)


def resolve(target: Any) -> Target:
    """A Target from a trace id, ``trace_id:span_id``, a span context, a span, or a
    response object (or stream) returned by an instrumented call in this process."""
    if isinstance(target, Target):
        if target.trace_id == 0 or target.span_id == 0:
            raise ValueError("target has an all-zero trace or span id; pass a real one.")
        return target
    if isinstance(target, str):
        return _from_text(target)
    if isinstance(target, SpanContext):
        return _from_span_context(target)
    if isinstance(target, trace.Span):
        return _from_span_context(target.get_span_context())
    tracer = getattr(target, "_self_tracer", None)
    if tracer is not None:
        return _from_span_context(tracer.call.span.get_span_context())
    response_id = getattr(target, "id", None)
    if isinstance(response_id, str):
        context = span_context_for(response_id)
        if context is not None:
            return _from_span_context(context)
        raise ValueError(
            f"target response {response_id!r} was not traced by closedloop in this process "
            "(or is older than its last 10,000 calls); pass its trace id instead."
        )
    raise ValueError(
        f"target must be a trace id, 'trace_id:span_id', a span context or an instrumented "
        f"response object, got {type(target).__name__}."
    )
