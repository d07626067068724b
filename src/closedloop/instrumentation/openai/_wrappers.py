"""wrapt wrappers around the SDK's methods, sync and async.

The wrapper's only promise to the app: the call, its result, its exceptions and its
stream are what they would be without closedloop. Anything that goes wrong on our side
is counted in ``closedloop.stats()`` and the call carries on untraced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai
import wrapt
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from closedloop import _health as health
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation.openai._call import Hooks, LLMCall, Operation
from closedloop.instrumentation.openai._raw import finish_legacy, traced_api_response
from closedloop.instrumentation.openai._stream_usage import (
    StreamUsagePolicy,
    refuses_stream_options,
)
from closedloop.instrumentation.openai._streams import (
    StreamTracer,
    collecting_streams,
    traced_stream,
)

try:
    from openai._legacy_response import LegacyAPIResponse
except ImportError:  # pragma: no cover - older or newer SDK layouts
    LegacyAPIResponse = None  # type: ignore[assignment,misc]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass
class _Request:
    """One traced request: what is sent, and the caller's own version to fall back to."""

    call: LLMCall
    send: dict[str, Any]
    callers: dict[str, Any]
    asked_usage: bool
    policy: StreamUsagePolicy
    endpoint_key: str

    def fall_back(self, error: BaseException) -> bool:
        """After the provider refused closedloop's ``stream_options``: send the caller's
        own request instead (True), and never ask this endpoint again."""
        if not (self.asked_usage and refuses_stream_options(error)):
            return False
        self.send, self.asked_usage = self.callers, False
        self.policy.refused(self.endpoint_key)
        health.count("stream_usage.refused")
        return True


def _begin(
    hooks: Hooks, operation: Operation, instance: Any, kwargs: dict[str, Any]
) -> tuple[_Request | None, dict[str, Any]]:
    """Start the span; on any internal failure no request (the call goes untraced) and
    the kwargs to send (one-shot iterators already read stay read, as lists). A span that
    is not sampled is followed too, for the metrics."""
    if not is_instrumentation_enabled():
        return None, kwargs
    name = operation.operation_name
    # Not guarded: only the caller's own iterators run here, and what they raise is the
    # caller's, exactly as the SDK would have raised it while reading them.
    prepared = operation.prepare(kwargs)
    try:
        endpoint = hooks.endpoints.of(instance)
        call = LLMCall(hooks, operation, endpoint, prepared)
    except Exception as error:
        health.record_failure(f"{name}.start", error)
        return None, prepared
    send, key = prepared, ""
    try:
        # Only streams can be asked for usage: plain calls skip the policy's lock entirely.
        # Unsampled streams are asked too: their token usage is in the metrics.
        if prepared.get("stream") is True:
            key = endpoint.key
            if hooks.stream_usage.may_ask(endpoint.address, key, prepared):
                send = operation.with_stream_usage(prepared) or prepared
    except Exception as error:
        health.record_failure(f"{name}.stream_usage", error)
    request = _Request(call, send, prepared, send is not prepared, hooks.stream_usage, key)
    return request, send


def _finish(request: _Request, result: Any, is_async: bool) -> Any:
    """Record ``result`` on the span and return what the caller must receive."""
    call = request.call
    try:
        # Streams and unread bodies end where the caller finishes reading them.
        if isinstance(result, (openai.Stream, openai.AsyncStream)):
            call.set({attr.PROVIDER_REQUEST_ID: result.response.headers.get("x-request-id")})
            return traced_stream(result, call, call.stream_state(request.asked_usage), is_async)
        if LegacyAPIResponse is not None and isinstance(result, LegacyAPIResponse):
            return finish_legacy(call, result, is_async)
        if isinstance(result, (openai.APIResponse, openai.AsyncAPIResponse)):
            return traced_api_response(result, call, request.send)
        call.mark_done()
        call.record_response(result)
    except Exception as error:
        health.record_failure(f"{call.operation.operation_name}.result", error)
    call.end()
    return result


def _failed(call: LLMCall, error: BaseException) -> None:
    call.mark_done()
    call.record_error(error)
    call.end()


def sync_wrapper(hooks: Hooks, operation: Operation) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        request, send = _begin(hooks, operation, instance, kwargs)
        if request is None:
            return wrapped(*args, **send)
        call = request.call
        try:
            # The span is current while the SDK runs (``use_span`` without its extras).
            token = context.attach(trace.set_span_in_context(call.span))
            try:
                try:
                    result = wrapped(*args, **request.send)
                    refused = False
                except Exception as error:
                    if not request.fall_back(error):
                        raise
                    refused = True
                if refused:  # outside the handler: the retry's errors do not chain ours
                    result = wrapped(*args, **request.send)
            finally:
                context.detach(token)
        except BaseException as error:
            _failed(call, error)
            raise
        return _finish(request, result, is_async=False)

    return wrapper


def async_wrapper(hooks: Hooks, operation: Operation) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        request, send = _begin(hooks, operation, instance, kwargs)
        if request is None:
            return await wrapped(*args, **send)
        call = request.call
        try:
            # The span is current while the SDK runs (``use_span`` without its extras).
            token = context.attach(trace.set_span_in_context(call.span))
            try:
                try:
                    result = await wrapped(*args, **request.send)
                    refused = False
                except Exception as error:
                    if not request.fall_back(error):
                        raise
                    refused = True
                if refused:  # outside the handler: the retry's errors do not chain ours
                    result = await wrapped(*args, **request.send)
            finally:
                context.detach(token)
        except BaseException as error:
            _failed(call, error)
            raise
        return _finish(request, result, is_async=True)

    return wrapper


class TracedStreamManager(wrapt.ObjectProxy[Any]):
    """Ends the spans of streams a ``.stream()`` helper opened when its block exits.

    The SDK's helper streams close the HTTP response on exit, not the stream object our
    span follows; without this a partly read helper stream would end only when collected.
    The manager and the helper stream it yields are registered with the call's span, so
    feedback can be given with either.
    """

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_opened: list[StreamTracer] = []

    def __enter__(self) -> Any:
        with collecting_streams() as opened:
            stream = self.__wrapped__.__enter__()
        self._remember_opened(opened, stream)
        return stream

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._end_opened()

    async def __aenter__(self) -> Any:
        with collecting_streams() as opened:
            stream = await self.__wrapped__.__aenter__()
        self._remember_opened(opened, stream)
        return stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._end_opened()

    def _remember_opened(self, opened: list[StreamTracer], stream: Any) -> None:
        self._self_opened = opened
        for tracer in opened:
            tracer.call.register(self)
            tracer.call.register(stream)

    def _end_opened(self) -> None:
        for tracer in self._self_opened:
            tracer.finish()


def stream_helper_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``.stream()``: the request itself goes through the traced ``create``."""
    return TracedStreamManager(wrapped(*args, **kwargs))
