"""Per-request application context that closedloop puts on every LLM span.

The app knows things the LLM client does not: who the user is, which prompt version and
experiment arm it chose, which conversation turn this is. ``closedloop.context(...)``
holds them in a ``contextvars.ContextVar``, so values follow the request across threads
started with ``contextvars.copy_context`` and across asyncio tasks, and nested blocks
override only what they name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanContext
from opentelemetry.util.types import AttributeValue

from closedloop._validation import require_non_empty_str, require_positive_int, require_type
from closedloop.instrumentation import _attributes as attr

_STRING_FIELDS = {
    "session_id": attr.SESSION_ID,
    "conversation_id": attr.CONVERSATION_ID,
    "prompt_name": attr.PROMPT_NAME,
    "prompt_version": attr.PROMPT_VERSION,
    "experiment": attr.EXPERIMENT,
    "variant": attr.VARIANT,
    "request_id": attr.REQUEST_ID,
}


class CallContext:
    """An immutable layer of app context; ``parent`` is the enclosing layer."""

    __slots__ = ("attributes", "parent", "tools", "user_id")

    def __init__(
        self,
        parent: CallContext | None,
        user_id: str | None,
        tools: tuple[str, ...],
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        self.parent = parent
        self.user_id = user_id
        self.tools = tools
        self.attributes = dict(attributes)

    def encloses(self, other: CallContext) -> bool:
        """True when ``other`` is this layer or one nested inside it."""
        layer: CallContext | None = other
        while layer is not None:
            if layer is self:
                return True
            layer = layer.parent
        return False


_current: ContextVar[CallContext | None] = ContextVar("closedloop_call_context", default=None)
# The latest generation call started in this task or thread, with the layer it started in.
# A ContextVar, not a field of the layer: tasks gathered in one block share the layer, and
# each must find its own call.
_last_generation: ContextVar[tuple[CallContext, SpanContext] | None] = ContextVar(
    "closedloop_last_generation", default=None
)


def current_call_context() -> CallContext | None:
    """The innermost active ``closedloop.context`` layer, or None outside any."""
    return _current.get()


def generation_started(layer: CallContext | None, span_context: SpanContext) -> None:
    """Note a generation call (chat, responses) as its span starts, so an unconsumed stream
    is already the latest call; embeddings are not noted (no metric reads their feedback)."""
    if layer is not None and span_context.is_valid:
        _last_generation.set((layer, span_context))


def latest_generation() -> SpanContext | None:
    """The latest generation call this task or thread started inside the current
    ``closedloop.context`` block (nested blocks included); None when there is none."""
    layer = _current.get()
    latest = _last_generation.get()
    if layer is None or latest is None:
        return None
    started_in, span_context = latest
    return span_context if layer.encloses(started_in) else None


T = TypeVar("T")


class LayerScope(ABC, Generic[T]):
    """A ``with`` (or ``async with``) block that sets one :class:`CallContext` layer and
    undoes it where the block ends.

    The block may end in another context than it began: exited from another asyncio task,
    or in a generator stepped through a fresh ``copy_context()`` per ``next()`` (Starlette's
    ``iterate_in_threadpool`` streams that way). The token cannot be reset there; if the
    current layer is this block's own, its parent is set back, else (the layer never
    reached this context, or an inner block is still open here) the context is left as it
    is. Ending a block must never raise into the app's response."""

    __slots__ = ("_layer", "_token")

    def __init__(self) -> None:
        self._layer: CallContext | None = None
        self._token: Token[CallContext | None] | None = None

    def _push(self, layer: CallContext) -> None:
        self._layer = layer
        self._token = _current.set(layer)

    @abstractmethod
    def __enter__(self) -> T: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, layer = self._token, self._layer
        if token is None or layer is None:
            return
        self._token = self._layer = None
        try:
            _current.reset(token)
        except ValueError:  # created in another context: see the class docstring
            if _current.get() is layer:
                _current.set(layer.parent)

    async def __aenter__(self) -> T:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _require_tools(value: object) -> tuple[str, ...]:
    fix = 'pass a list of tool names, e.g. tools=["search", "lookup_order"].'
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"tools={value!r} is a {type(value).__name__}, not a list of names; {fix}")
    names = tuple(value)
    for index, name in enumerate(names):
        require_non_empty_str(f"tools[{index}]", name, fix)
    return names


class context(LayerScope[CallContext]):
    """Attach app context to every LLM span started inside the ``with`` block.

    Blocks nest: an inner block overrides the fields it names and inherits the rest.
    Works in threads and asyncio tasks alike because it is a ContextVar.
    """

    def __init__(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        turn: int | None = None,
        prompt_name: str | None = None,
        prompt_version: str | None = None,
        experiment: str | None = None,
        variant: str | None = None,
        tools: Iterable[str] | None = None,
        request_id: str | None = None,
        shadow: bool | None = None,
    ) -> None:
        given: dict[str, AttributeValue] = {}
        for field, value in (
            ("session_id", session_id),
            ("conversation_id", conversation_id),
            ("prompt_name", prompt_name),
            ("prompt_version", prompt_version),
            ("experiment", experiment),
            ("variant", variant),
            ("request_id", request_id),
        ):
            if value is not None:
                require_non_empty_str(field, value, f"pass str({field}) or leave it out.")
                given[_STRING_FIELDS[field]] = value
        if turn is not None:
            require_positive_int("turn", turn, "turns count from 1.")
            given[attr.TURN] = turn
        if shadow is not None:
            require_type("shadow", shadow, bool, "pass True for a shadow call, or leave it out.")
            given[attr.SHADOW] = shadow
        if user_id is not None:
            require_non_empty_str("user_id", user_id, "pass str(user_id) or leave it out.")
        super().__init__()
        self._user_id = user_id
        self._tools = None if tools is None else _require_tools(tools)
        self._given = given

    def __enter__(self) -> CallContext:
        parent = _current.get()
        merged = dict(parent.attributes) if parent else {}
        merged.update(self._given)
        inherited = parent.user_id if parent is not None else None
        user_id = self._user_id if self._user_id is not None else inherited
        tools = self._tools if self._tools is not None else (parent.tools if parent else ())
        layer = CallContext(parent, user_id, tools, merged)
        self._push(layer)
        return layer


def current_trace_id() -> str | None:
    """32-hex trace id to store with the app's record of this request, for later feedback.

    The active span's trace if there is one (the app's request span, or the LLM span
    itself while a stream is consumed); otherwise that of the latest generation call this
    task or thread made inside the current ``closedloop.context`` block; otherwise None.
    """
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return trace.format_trace_id(span_context.trace_id)
    latest = latest_generation()
    return trace.format_trace_id(latest.trace_id) if latest is not None else None
