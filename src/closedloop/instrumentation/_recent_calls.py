"""Which span produced a given response, for feedback given with the response object.

``closedloop.feedback.record(response, ...)`` is the easiest way to attach feedback in the
process that made the call. Two bounded maps make it possible without reading the SDK's
objects or the instrumentation's private fields:

- provider response id -> span context, for plain response models (copies and
  re-parsed objects keep their ``id``);
- object identity -> span context, for what the instrumentation returns without an id:
  stream and raw-response proxies (no id until consumed) and embeddings results (none at
  all). Entries hold the object weakly when it allows, so registering never keeps a
  finished stream alive.

Calls whose span head sampling dropped are registered too: their span context is valid,
and ``feedback.call_id(reply)`` must not fail on the calls that were not sampled.

The maps are a :class:`RecentCalls` that the process's runtime holds
(``closedloop._runtime``); instrumentation writes to it through the call it traces.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable

from opentelemetry.trace import SpanContext

MAX_ENTRIES = 10_000

# A registered object (held weakly when it allows) and the span behind it.
_Entry = tuple[Callable[[], object | None], SpanContext]


class RecentCalls:
    """The spans of the last ``MAX_ENTRIES`` responses and objects, by id and by identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_response_id: OrderedDict[str, SpanContext] = OrderedDict()
        self._by_object: OrderedDict[int, _Entry] = OrderedDict()
        # Ids of collected objects. Weakref callbacks may run inside a locked section
        # (garbage collection can start anywhere), so they only append here; the next
        # register() purges.
        self._collected: deque[int] = deque()

    def remember(self, response_id: str, span_context: SpanContext) -> None:
        """Record the span of a call that returned a response with this provider id."""
        with self._lock:
            self._by_response_id[response_id] = span_context
            self._by_response_id.move_to_end(response_id)
            if len(self._by_response_id) > MAX_ENTRIES:
                self._by_response_id.popitem(last=False)

    def span_context_for(self, response_id: str) -> SpanContext | None:
        """The span of a recent call (the last 10,000 in this process) that returned this id."""
        with self._lock:
            return self._by_response_id.get(response_id)

    def register(self, obj: object, span_context: SpanContext) -> None:
        """Record the span behind an object the instrumentation returned (a stream proxy, say).

        Keyed by identity, not equality: ``wrapt`` proxies compare and hash like the object
        they wrap, which would confuse two streams over equal payloads.
        """
        key = id(obj)
        collected = self._collected
        try:
            reference: Callable[[], object | None] = weakref.ref(
                obj, lambda _: collected.append(key)
            )
        except TypeError:
            # Not weak-referenceable: hold it strongly; the bound limits what that keeps alive.
            reference = _StrongReference(obj)
        with self._lock:
            self._purge_collected()
            self._by_object[key] = (reference, span_context)
            self._by_object.move_to_end(key)
            if len(self._by_object) > MAX_ENTRIES:
                self._by_object.popitem(last=False)

    def span_context_of(self, obj: object) -> SpanContext | None:
        """The span behind a registered object, else behind its response ``id``, else None."""
        with self._lock:
            entry = self._by_object.get(id(obj))
            if entry is not None and entry[0]() is obj:
                return entry[1]
        response_id = getattr(obj, "id", None)
        return self.span_context_for(response_id) if isinstance(response_id, str) else None

    def _purge_collected(self) -> None:
        """Drop entries whose object is gone (callers hold ``_lock``)."""
        while self._collected:
            key = self._collected.popleft()
            entry = self._by_object.get(key)
            # The id may already belong to a newer object registered since; keep that entry.
            if entry is not None and entry[0]() is None:
                del self._by_object[key]


def span_context_of(obj: object) -> SpanContext | None:
    """The span behind ``obj`` in this process's recent calls (what feedback resolves)."""
    # Imported here: the runtime imports this module to hold a RecentCalls.
    from closedloop._runtime import current

    return current().recent_calls.span_context_of(obj)


class _StrongReference:
    """The ``weakref.ref`` call shape for objects that cannot be weakly referenced."""

    __slots__ = ("_obj",)

    def __init__(self, obj: object) -> None:
        self._obj = obj

    def __call__(self) -> object:
        return self._obj
