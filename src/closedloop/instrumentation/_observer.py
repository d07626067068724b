"""Span links and a cost callback for the LLM calls made inside a block.

A shadow call runs off the user's path, in a trace of its own: its span must link to the
production call it shadows, and whoever runs it must learn what it cost to keep a budget.
The instrumentation knows nothing of experiments; it only honours what this context var
asks. A ``ContextVar`` like ``closedloop.context``, so it follows threads and tasks alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from opentelemetry.trace import SpanContext


@dataclass(frozen=True)
class CallObserver:
    """``links``: span contexts every LLM span started in the block links to.
    ``on_cost``: told each call's USD cost when its span ends (None: not priced)."""

    links: tuple[SpanContext, ...] = ()
    on_cost: Callable[[float | None], None] | None = None


_observer: ContextVar[CallObserver | None] = ContextVar("closedloop_call_observer", default=None)


def current_observer() -> CallObserver | None:
    """The observer of the innermost ``observed`` block, or None outside any."""
    return _observer.get()


@contextmanager
def observed(observer: CallObserver) -> Iterator[None]:
    """Apply ``observer`` to every LLM call started inside the ``with`` block."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)
