"""``closedloop.instrument()``: one call at start-up wires tracing for LLM calls.

It reuses the app's TracerProvider when there is one (closedloop is a good OTel citizen),
and otherwise creates one that exports over OTLP/HTTP, honouring the standard
``OTEL_EXPORTER_OTLP_*`` and ``OTEL_SERVICE_NAME`` variables.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from closedloop.instrumentation.openai import OpenAIInstrumentor
from closedloop.instrumentation.settings import InstrumentationSettings
from closedloop.instrumentation.users import InteractionCounter
from closedloop.privacy import Redactor

logger = logging.getLogger("closedloop")


@dataclass
class _State:
    provider: trace.TracerProvider
    created_provider: bool


_lock = threading.Lock()
_state: _State | None = None


def _traces_url(endpoint: str) -> str:
    """Accept a collector base URL (``http://host:4318``) or a full ``/v1/traces`` URL."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"endpoint={endpoint!r} is not an http(s) URL; pass e.g. 'http://localhost:4318'."
        )
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _provider(
    service_name: str | None,
    endpoint: str | None,
    exporter: SpanExporter | None,
    tracer_provider: trace.TracerProvider | None,
) -> tuple[trace.TracerProvider, bool]:
    """The provider to trace with, and whether closedloop created (and owns) it."""
    existing = tracer_provider or trace.get_tracer_provider()
    if isinstance(existing, TracerProvider) or tracer_provider is not None:
        if exporter is not None and isinstance(existing, TracerProvider):
            existing.add_span_processor(BatchSpanProcessor(exporter))
        return existing, False
    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        exporter = OTLPSpanExporter(endpoint=_traces_url(endpoint) if endpoint else None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, True


def instrument(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    capture_content: bool = True,
    redact: bool = True,
    redactors: Sequence[Redactor] = (),
    user_hash_key: str | bytes | None = None,
    new_user_interactions: int = 10,
    interaction_counter: InteractionCounter | None = None,
    prices: Mapping[str, Mapping[str, object]] | None = None,
) -> trace.TracerProvider:
    """Trace every OpenAI call of this process; returns the TracerProvider in use.

    Calling it again is a no-op that returns the same provider; ``uninstrument()`` undoes
    it. ``exporter`` replaces the default OTLP/HTTP exporter (or, when the app already has
    a TracerProvider, is added to it). ``prices`` maps a model name to
    ``{"input_per_mtok", "output_per_mtok", "cached_input_per_mtok"}`` in USD.
    """
    global _state
    with _lock:
        if _state is not None:
            logger.debug("closedloop.instrument() called again: already instrumented")
            return _state.provider
        settings = InstrumentationSettings.build(
            capture_content=capture_content,
            redact=redact,
            redactors=redactors,
            user_hash_key=user_hash_key,
            new_user_interactions=new_user_interactions,
            interaction_counter=interaction_counter,
            prices=prices,
        )
        provider, created = _provider(service_name, endpoint, exporter, tracer_provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider, settings=settings)
        _state = _State(provider, created)
        return provider


def active_tracer_provider() -> trace.TracerProvider:
    """The provider ``instrument()`` traces with, else the global one (for feedback spans)."""
    state = _state
    return state.provider if state is not None else trace.get_tracer_provider()


def uninstrument() -> None:
    """Restore the OpenAI client methods exactly and flush what was traced."""
    global _state
    with _lock:
        if _state is None:
            return
        OpenAIInstrumentor().uninstrument()
        if isinstance(_state.provider, TracerProvider):
            _state.provider.force_flush()
        _state = None
