"""What feedback is about: a trace, a span, or a response object, resolved to ids.

Only ids are needed, so feedback works from any process, days later: the app stores
``call_id(response)`` (``trace_id:span_id``) or ``closedloop.current_trace_id()`` with its
own record and passes it back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, get_args, get_origin, overload

import openai
from openai._legacy_response import LegacyAPIResponse
from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
)
from openai.lib.streaming.responses import (
    AsyncResponseStream,
    AsyncResponseStreamManager,
    ResponseStream,
    ResponseStreamManager,
)
from openai.types import CreateEmbeddingResponse
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, TraceFlags

from closedloop.instrumentation._context import latest_generation
from closedloop.instrumentation._recent_calls import span_context_of

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

    def __str__(self) -> str:
        """``trace_id:span_id`` (or the trace id alone): the text form every target takes."""
        if self.span_id is None:
            return self.trace_id_hex
        return f"{self.trace_id_hex}:{trace.format_span_id(self.span_id)}"


def parent_context(target: Target) -> SpanContext:
    """The parent for the feedback span about ``target`` (internal: the recorder's).

    Without a span id, a stable synthetic one derived from the trace id keeps every
    trace-level signal under one (absent) parent; the store then attributes it to the
    trace's latest LLM call. Always sampled, so that a parent-based sampler records the
    feedback even on a call head sampling dropped.
    """
    span_id = (
        target.span_id
        or int.from_bytes(hashlib.sha256(target.trace_id_hex.encode()).digest()[:8], "big")
        or 1
    )
    return SpanContext(
        target.trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )


class IdentifiedResponse(Protocol):
    """A provider response model with its id: ``ChatCompletion``, a Responses API
    ``Response``. Instrumentation remembers the span of each id it returned."""

    @property
    def id(self) -> str: ...


SDKObject: TypeAlias = (
    CreateEmbeddingResponse
    | openai.Stream[Any]
    | openai.AsyncStream[Any]
    | openai.APIResponse[Any]
    | openai.AsyncAPIResponse[Any]
    | LegacyAPIResponse[Any]
    | ChatCompletionStream[Any]
    | AsyncChatCompletionStream[Any]
    | ChatCompletionStreamManager[Any]
    | AsyncChatCompletionStreamManager[Any]
    | ResponseStream[Any]
    | AsyncResponseStream[Any]
    | ResponseStreamManager[Any]
    | AsyncResponseStreamManager[Any]
)
"""What the openai SDK returns without a response id: embeddings results, streams, stream
helpers and their managers, raw responses. The instrumentation registers each one it
returns with its span."""
_SDK_CLASSES = tuple(get_origin(alias) or alias for alias in get_args(SDKObject))

FeedbackTarget: TypeAlias = str | Target | SpanContext | Span | IdentifiedResponse | SDKObject
"""What feedback can be about: a trace id, ``trace_id:span_id``, a span context or span, or
a response (embeddings included), stream or raw response returned by an instrumented call
in this process, sampled or not. Ids travel across processes; objects resolve only where
the call was made."""


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


def resolve(target: FeedbackTarget) -> Target:
    """The ids ``target`` names; ValueError when it names none, TypeError for other types."""
    if isinstance(target, Target):
        if target.trace_id == 0 or target.span_id == 0:
            raise ValueError("target has an all-zero trace or span id; pass a real one.")
        return target
    if isinstance(target, str):
        return _from_text(target)
    if isinstance(target, SpanContext):
        return _from_span_context(target)
    if isinstance(target, Span):
        return _from_span_context(target.get_span_context())
    context = span_context_of(target)
    if context is not None:
        return _from_span_context(context)
    response_id = getattr(target, "id", None)
    if isinstance(response_id, str):
        raise ValueError(
            f"target response {response_id!r} was not traced by closedloop in this process "
            "(or is older than its last 10,000 calls); pass its trace id instead."
        )
    if isinstance(target, _SDK_CLASSES):
        raise ValueError(
            f"target {type(target).__name__} was not returned by an instrumented call in "
            "this process (or is older than its last 10,000 calls); pass its trace id instead."
        )
    raise TypeError(
        f"target must be a trace id, 'trace_id:span_id', a span context or span, or a "
        f"response or stream returned by an instrumented call, got {type(target).__name__}."
    )


@overload
def call_id() -> str | None: ...
@overload
def call_id(target: FeedbackTarget) -> str: ...
def call_id(target: FeedbackTarget | None = None) -> str | None:
    """``trace_id:span_id`` of one LLM call: store it with the app's record of the answer and
    pass it to ``record()``/``thumbs()``... later, from any process.

    With ``target`` (typically the response or stream the call returned), that call's id.
    Without, the latest generation call (chat or responses, not embeddings) that this
    asyncio task or thread started inside the current ``closedloop.context`` block, or
    None when there is none; a stream counts from its start, read or not. Unlike
    ``closedloop.current_trace_id()`` it names the call itself, so feedback lands on the
    right one when a trace holds several.
    """
    if target is not None:
        return str(resolve(target))
    latest = latest_generation()
    return None if latest is None else str(_from_span_context(latest))
