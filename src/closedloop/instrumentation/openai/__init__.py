"""OpenTelemetry instrumentor for the ``openai`` SDK (sync and async clients).

Registered under the ``opentelemetry_instrumentor`` entry point, so
``opentelemetry-instrument python app.py`` picks it up with no code change;
``closedloop.instrument()`` uses it too, with explicit settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from closedloop import __version__
from closedloop.instrumentation import deferred
from closedloop.instrumentation.openai.call import Operation
from closedloop.instrumentation.openai.chat import ChatCompletions
from closedloop.instrumentation.openai.embeddings import Embeddings
from closedloop.instrumentation.openai.responses import Responses
from closedloop.instrumentation.openai.stream_usage import StreamUsagePolicy
from closedloop.instrumentation.openai.wrappers import (
    Hooks,
    async_wrapper,
    stream_helper_wrapper,
    sync_wrapper,
)
from closedloop.instrumentation.settings import InstrumentationSettings, activate

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


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces ``chat.completions`` and ``responses`` (``create``, ``parse``, ``stream``) and
    ``embeddings.create``, sync and async.

    Their ``with_raw_response`` and ``with_streaming_response`` forms go through the same
    methods and are traced too.
    Keyword arguments to ``instrument()``: ``tracer_provider`` and ``settings``
    (an ``InstrumentationSettings``; defaults come from ``CLOSEDLOOP_*`` variables).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.60",)

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            "closedloop.instrumentation.openai",
            __version__,
            tracer_provider=kwargs.get("tracer_provider"),
            schema_url="https://opentelemetry.io/schemas/1.37.0",
        )
        settings = kwargs.get("settings") or InstrumentationSettings.build()
        activate(settings)
        deferred.start()
        hooks = Hooks(tracer, settings, StreamUsagePolicy(settings.stream_usage))
        for module, cls, method, operation in _TARGETS:
            wrap_function_wrapper(module, f"{cls}.{method}", sync_wrapper(hooks, operation))
            wrap_function_wrapper(module, f"Async{cls}.{method}", async_wrapper(hooks, operation))
        for module, cls in _STREAM_HELPERS:
            wrap_function_wrapper(module, f"{cls}.stream", stream_helper_wrapper)
            wrap_function_wrapper(module, f"Async{cls}.stream", stream_helper_wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        activate(None)
        wrapped = {(module, cls, method) for module, cls, method, _ in _TARGETS}
        wrapped.update((module, cls, "stream") for module, cls in _STREAM_HELPERS)
        for module, cls, method in wrapped:
            loaded = importlib.import_module(module)
            unwrap(getattr(loaded, cls), method)
            unwrap(getattr(loaded, f"Async{cls}"), method)


__all__ = ["OpenAIInstrumentor"]
