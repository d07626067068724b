"""wrapt wrappers around the SDK's ``create`` methods, sync and async.

The wrapper's only promise to the app: the call, its result, its exceptions and its
stream are what they would be without closedloop. Anything that goes wrong on our side
is counted in ``closedloop.stats()`` and the call carries on untraced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Tracer

import openai
from closedloop import health
from closedloop.instrumentation import attributes as attr
from closedloop.instrumentation.openai.call import Endpoint, LLMCall, Operation
from closedloop.instrumentation.openai.streams import traced_stream
from closedloop.instrumentation.settings import InstrumentationSettings

try:
    from openai._legacy_response import LegacyAPIResponse
except ImportError:  # pragma: no cover - older or newer SDK layouts
    LegacyAPIResponse = None  # type: ignore[assignment,misc]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _begin(
    tracer: Tracer,
    settings: InstrumentationSettings,
    operation: Operation,
    instance: Any,
    kwargs: dict[str, Any],
) -> tuple[LLMCall | None, dict[str, Any], bool]:
    """Start the span; on any internal failure return no call and the caller's kwargs."""
    if not is_instrumentation_enabled():
        return None, kwargs, False
    try:
        prepared = operation.prepare(kwargs)
    except Exception as error:
        health.record_failure(f"{operation.operation_name}.prepare", error)
        return None, kwargs, False
    try:
        call = LLMCall(tracer, settings, operation, Endpoint.of(instance), prepared)
    except Exception as error:
        health.record_failure(f"{operation.operation_name}.start", error)
        return None, prepared, False
    if not call.recording:
        call.end()
        return None, prepared, False
    try:
        hide_usage = operation.request_stream_usage(prepared)
    except Exception as error:
        health.record_failure(f"{operation.operation_name}.stream_usage", error)
        hide_usage = False
    return call, prepared, hide_usage


def _finish(call: LLMCall, result: Any, hide_usage: bool, is_async: bool) -> Any:
    """Record ``result`` on the span and return what the caller must receive."""
    if not isinstance(result, (openai.Stream, openai.AsyncStream)):
        call.mark_done()
    try:
        if isinstance(result, (openai.Stream, openai.AsyncStream)):
            call.set({attr.PROVIDER_REQUEST_ID: result.response.headers.get("x-request-id")})
            state = call.operation.stream_state(hide_usage)
            return traced_stream(result, call, state, is_async)
        if LegacyAPIResponse is not None and isinstance(result, LegacyAPIResponse):
            return _finish_raw(call, result, hide_usage, is_async)
        if isinstance(result, (openai.APIResponse, openai.AsyncAPIResponse)):
            call.set({attr.PROVIDER_REQUEST_ID: result.headers.get("x-request-id")})
        else:
            call.record_response(result)
    except Exception as error:
        health.record_failure(f"{call.operation.operation_name}.result", error)
    call.end()
    return result


def _finish_raw(call: LLMCall, raw: Any, hide_usage: bool, is_async: bool) -> Any:
    """``with_raw_response``: parse once (the SDK caches it) and trace the parsed value.

    A raw stream's parsed object is replaced in the SDK's parse cache by our proxy, so the
    caller's ``raw.parse()`` returns the traced stream.
    """
    try:
        parsed = raw.parse()
    except Exception as error:
        call.record_error(error)
        call.end()
        return raw
    call.set({attr.PROVIDER_REQUEST_ID: raw.request_id})
    if isinstance(parsed, (openai.Stream, openai.AsyncStream)):
        state = call.operation.stream_state(hide_usage)
        raw._parsed_by_type[raw._cast_to] = traced_stream(parsed, call, state, is_async)
        return raw
    call.record_response(parsed)
    call.end()
    return raw


def sync_wrapper(
    tracer: Tracer, settings: InstrumentationSettings, operation: Operation
) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call, send, hide_usage = _begin(tracer, settings, operation, instance, kwargs)
        if call is None:
            return wrapped(*args, **send)
        try:
            with trace.use_span(call.span, record_exception=False, set_status_on_exception=False):
                result = wrapped(*args, **send)
        except BaseException as error:
            call.mark_done()
            call.record_error(error)
            call.end()
            raise
        return _finish(call, result, hide_usage, is_async=False)

    return wrapper


def async_wrapper(
    tracer: Tracer, settings: InstrumentationSettings, operation: Operation
) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        call, send, hide_usage = _begin(tracer, settings, operation, instance, kwargs)
        if call is None:
            return await wrapped(*args, **send)
        try:
            with trace.use_span(call.span, record_exception=False, set_status_on_exception=False):
                result = await wrapped(*args, **send)
        except BaseException as error:
            call.mark_done()
            call.record_error(error)
            call.end()
            raise
        return _finish(call, result, hide_usage, is_async=True)

    return wrapper
