"""OpenTelemetry instrumentor for the ``openai`` SDK (sync and async clients).

Registered under the ``opentelemetry_instrumentor`` entry point, so
``opentelemetry-instrument python app.py`` picks it up with no code change;
``closedloop.instrument()`` uses it too, with explicit settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace

# The module opts out of type checking (a file-level ``# type: ignore``): its names are Any.
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from closedloop import __version__
from closedloop._runtime import DEFAULT_SHUTDOWN_TIMEOUT_S, Instrumentation, current
from closedloop._validation import require_instrument_options, require_type
from closedloop.instrumentation._client_metrics import ClientMetrics
from closedloop.instrumentation._settings import InstrumentationSettings
from closedloop.instrumentation.openai._call import Hooks, Operation
from closedloop.instrumentation.openai._chat import ChatCompletions
from closedloop.instrumentation.openai._content import written_messages
from closedloop.instrumentation.openai._embeddings import Embeddings
from closedloop.instrumentation.openai._responses import Responses
from closedloop.instrumentation.openai._stream_usage import StreamUsagePolicy
from closedloop.instrumentation.openai._wrappers import (
    async_wrapper,
    stream_helper_wrapper,
    sync_wrapper,
)

# (module, class, method, operation): every SDK method that sends one LLM request.
_TARGETS: tuple[tuple[str, str, str, Operation], ...] = (
    ("openai.resources.chat.completions", "Completions", "create", ChatCompletions()),
    ("openai.resources.chat.completions", "Completions", "parse", ChatCompletions()),
    ("openai.resources.responses", "Responses", "create", Responses()),
    ("openai.resources.responses", "Responses", "parse", Responses()),
    ("openai.resources.embeddings", "Embeddings", "create", Embeddings()),
)
# ``.stream()`` helpers send their request through the traced ``create``; wrapping them
# lets the helper's block end the span when it exits.
_STREAM_HELPERS: tuple[tuple[str, str], ...] = (
    ("openai.resources.chat.completions", "Completions"),
    ("openai.resources.responses", "Responses"),
)


def _instrumentation(kwargs: dict[str, Any]) -> Instrumentation:
    """What ``instrument(**kwargs)`` asks for, checked; absent ones are the globals (and
    settings from ``CLOSEDLOOP_*`` variables), as under ``opentelemetry-instrument``."""
    tracer_provider = kwargs.get("tracer_provider")
    meter_provider = kwargs.get("meter_provider")
    shutdown_timeout_s = kwargs.get("shutdown_timeout_s", DEFAULT_SHUTDOWN_TIMEOUT_S)
    require_instrument_options(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        shutdown_timeout_s=shutdown_timeout_s,
    )
    settings = kwargs.get("settings") or InstrumentationSettings.build()
    require_type("settings", settings, InstrumentationSettings, "pass InstrumentationSettings.")
    return Instrumentation(
        settings,
        tracer_provider or trace.get_tracer_provider(),
        meter_provider or metrics.get_meter_provider(),
        shutdown_timeout_s,
    )


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # subclassing Any (see above)
    """Traces ``chat.completions`` and ``responses`` (``create``, ``parse``, ``stream``) and
    ``embeddings.create``, sync and async, and records the GenAI client metrics.

    Their ``with_raw_response`` and ``with_streaming_response`` forms go through the same
    methods and are traced too.
    Keyword arguments to ``instrument()``: ``tracer_provider``, ``meter_provider``,
    ``settings`` (an ``InstrumentationSettings``; defaults come from ``CLOSEDLOOP_*``
    variables) and ``shutdown_timeout_s`` (how long ``closedloop.uninstrument()`` waits
    for the flush). The instrumentation in force is the runtime's, for feedback to use.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.60",)

    def _instrument(self, **kwargs: Any) -> None:
        active = _instrumentation(kwargs)
        tracer = trace.get_tracer(
            "closedloop.instrumentation.openai",
            __version__,
            tracer_provider=active.tracer_provider,
            schema_url="https://opentelemetry.io/schemas/1.37.0",
        )
        settings = active.settings
        hooks = Hooks(
            tracer,
            settings,
            StreamUsagePolicy(settings.stream_usage),
            ClientMetrics(active.meter_provider),
            written_messages(settings.redactor),
        )
        runtime = current()
        runtime.deferred.start()
        for module, cls, method, operation in _TARGETS:
            wrap_function_wrapper(module, f"{cls}.{method}", sync_wrapper(hooks, operation))
            wrap_function_wrapper(module, f"Async{cls}.{method}", async_wrapper(hooks, operation))
        for module, cls in _STREAM_HELPERS:
            wrap_function_wrapper(module, f"{cls}.stream", stream_helper_wrapper)
            wrap_function_wrapper(module, f"Async{cls}.stream", stream_helper_wrapper)
        with runtime.lock:
            runtime.instrumentation = active

    def _uninstrument(self, **kwargs: Any) -> None:
        runtime = current()
        with runtime.lock:
            runtime.instrumentation = None
        wrapped = {(module, cls, method) for module, cls, method, _ in _TARGETS}
        wrapped.update((module, cls, "stream") for module, cls in _STREAM_HELPERS)
        for module, cls, method in wrapped:
            loaded = importlib.import_module(module)
            unwrap(getattr(loaded, cls), method)
            unwrap(getattr(loaded, f"Async{cls}"), method)


__all__ = ["OpenAIInstrumentor"]
