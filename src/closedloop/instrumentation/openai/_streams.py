"""Stream proxies: the caller sees the SDK's own stream; the span sees every item.

``wrapt.ObjectProxy`` keeps ``isinstance`` checks, attributes such as ``.response`` and
any SDK method we do not override. The span ends when the stream is exhausted, fails,
is closed (directly or by its context manager) or is garbage collected — whichever comes
first, and only once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import wrapt

from closedloop import _health as health
from closedloop._runtime import current
from closedloop.instrumentation.openai._call import LLMCall, StreamState


class StreamTracer:
    """What both proxies do with each item, kept apart from the proxy plumbing."""

    __slots__ = ("call", "state")

    def __init__(self, call: LLMCall, state: StreamState) -> None:
        self.call = call
        self.state = state

    def hide(self, item: Any) -> bool:
        """Observe ``item``; True if the caller must not see it (our own usage chunk).

        Observing and concealing are guarded apart: a chunk the span cannot read is
        still restored to what the caller would have received without closedloop.
        """
        state = self.state
        try:
            started = state.content_started
            state.observe(item)
            if not started and state.content_started:
                self.call.first_chunk()
        except Exception as error:
            health.record_failure("stream.observe", error)
        try:
            return state.conceal(item)
        except Exception as error:
            health.record_failure("stream.conceal", error)
            return False

    def finish(self, error: BaseException | None = None) -> None:
        if self.call.ended:
            return
        self.call.mark_done()
        try:
            self.state.finish(self.call)
            if error is not None:
                self.call.record_error(error)
        except Exception as failure:
            health.record_failure("stream.finish", failure)
        self.call.end()


class TracedStream(wrapt.ObjectProxy[Any]):
    """Proxy for ``openai.Stream``."""

    def __init__(self, stream: Any, tracer: StreamTracer) -> None:
        super().__init__(stream)
        self._self_tracer = tracer

    @property
    def stream_tracer(self) -> StreamTracer:
        return self._self_tracer

    def __iter__(self) -> Iterator[Any]:
        # A generator, as the SDK's own ``Stream.__iter__``: resuming it per item costs
        # less than calling ``__next__`` through the proxy. It holds the proxy, which a
        # ``for`` loop over ``create(...)`` would otherwise let go (ending the span).
        tracer = self._self_tracer
        next_item = self.__wrapped__.__next__
        hide = tracer.hide
        while True:
            try:
                item = next_item()
            except StopIteration:
                tracer.finish()
                return
            except BaseException as error:
                tracer.finish(error)
                raise
            if not hide(item):
                yield item

    def __next__(self) -> Any:
        for item in self:  # a loop is the common case: next() pays for a generator
            return item
        raise StopIteration

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_tracer.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracer.finish()

    def __del__(self) -> None:
        _end_abandoned(getattr(self, "_self_tracer", None))


class AsyncTracedStream(wrapt.ObjectProxy[Any]):
    """Proxy for ``openai.AsyncStream``."""

    def __init__(self, stream: Any, tracer: StreamTracer) -> None:
        super().__init__(stream)
        self._self_tracer = tracer

    @property
    def stream_tracer(self) -> StreamTracer:
        return self._self_tracer

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_tracer.finish()
                raise
            except BaseException as error:
                self._self_tracer.finish(error)
                raise
            if not self._self_tracer.hide(item):
                return item

    async def __aenter__(self) -> AsyncTracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_tracer.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracer.finish()

    def __del__(self) -> None:
        _end_abandoned(getattr(self, "_self_tracer", None))


def _end_abandoned(tracer: StreamTracer | None) -> None:
    """A stream collected before it ended: end its span off the collecting thread."""
    if tracer is not None and not tracer.call.ended:
        current().deferred.defer(lambda: _end_collected(tracer))


def _end_collected(tracer: StreamTracer) -> None:
    if not tracer.call.ended:
        health.count("stream.ended_by_gc")
        tracer.finish()


# Streams opened while a helper's stream manager enters (``.stream()``), so its exit can
# end their spans: the SDK's helpers close the HTTP response, not the stream object.
_opened: ContextVar[list[StreamTracer] | None] = ContextVar("closedloop_opened", default=None)


@contextmanager
def collecting_streams() -> Iterator[list[StreamTracer]]:
    """Collect the tracers of streams opened inside the block."""
    opened: list[StreamTracer] = []
    token = _opened.set(opened)
    try:
        yield opened
    finally:
        _opened.reset(token)


def traced_stream(
    stream: Any, call: LLMCall, state: StreamState, is_async: bool
) -> TracedStream | AsyncTracedStream:
    """The proxy the caller gets instead of ``stream``; feedback can be given with it."""
    tracer = StreamTracer(call, state)
    opened = _opened.get()
    if opened is not None:
        opened.append(tracer)
    proxy = AsyncTracedStream(stream, tracer) if is_async else TracedStream(stream, tracer)
    call.register(proxy)
    return proxy
