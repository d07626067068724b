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
from closedloop.instrumentation.openai.call import Operation
from closedloop.instrumentation.openai.chat import ChatCompletions
from closedloop.instrumentation.openai.embeddings import Embeddings
from closedloop.instrumentation.openai.responses import Responses
from closedloop.instrumentation.openai.wrappers import async_wrapper, sync_wrapper
from closedloop.instrumentation.settings import InstrumentationSettings, activate

_TARGETS: tuple[tuple[str, str, Operation], ...] = (
    ("openai.resources.chat.completions", "Completions", ChatCompletions()),
    ("openai.resources.responses", "Responses", Responses()),
    ("openai.resources.embeddings", "Embeddings", Embeddings()),
)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces ``chat.completions.create``, ``responses.create`` and ``embeddings.create``.

    Their ``with_raw_response`` forms go through the same methods and are traced too.
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
        for module, cls, operation in _TARGETS:
            wrap_function_wrapper(
                module, f"{cls}.create", sync_wrapper(tracer, settings, operation)
            )
            wrap_function_wrapper(
                module, f"Async{cls}.create", async_wrapper(tracer, settings, operation)
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        activate(None)
        for module, cls, _ in _TARGETS:
            loaded = importlib.import_module(module)
            unwrap(getattr(loaded, cls), "create")
            unwrap(getattr(loaded, f"Async{cls}"), "create")


__all__ = ["OpenAIInstrumentor"]
