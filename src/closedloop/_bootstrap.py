"""``closedloop.instrument()``: one call at start-up wires tracing for LLM calls.

It reuses the app's TracerProvider when there is one (closedloop is a good OTel citizen),
and otherwise creates one that exports over OTLP/HTTP, honouring the standard
``OTEL_EXPORTER_OTLP_*`` and ``OTEL_SERVICE_NAME`` variables. A provider closedloop
creates never holds the app up: exports time out quickly, and ``uninstrument()`` and
process exit wait at most ``shutdown_timeout_s`` for a collector that does not answer.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from closedloop import _health as health
from closedloop._runtime import DEFAULT_SHUTDOWN_TIMEOUT_S, current
from closedloop._validation import require_instrument_options, require_type
from closedloop.instrumentation._settings import (
    DEFAULT_MAX_CONTENT_CHARS,
    InstrumentationSettings,
    StreamUsage,
)
from closedloop.instrumentation._users import InteractionCounter
from closedloop.instrumentation.openai import OpenAIInstrumentor
from closedloop.privacy import Redactor

logger = logging.getLogger("closedloop")

# One OTLP request (retries included) to a collector closedloop's own provider sends to.
EXPORT_TIMEOUT_S = 5.0
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")


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


def _otlp_exporter(endpoint: str | None) -> OTLPSpanExporter:
    """The default exporter, with a short timeout unless the standard variables set one."""
    timeout_set = any(os.environ.get(name, "").strip() for name in _TIMEOUT_VARIABLES)
    return OTLPSpanExporter(
        endpoint=_traces_url(endpoint) if endpoint else None,
        timeout=None if timeout_set else EXPORT_TIMEOUT_S,
    )


def _provider(
    service_name: str | None,
    endpoint: str | None,
    exporter: SpanExporter | None,
    tracer_provider: trace.TracerProvider | None,
    shutdown_timeout_s: float,
) -> trace.TracerProvider:
    """The provider to trace with: the app's if it has one, else one closedloop creates."""
    existing = tracer_provider or trace.get_tracer_provider()
    if isinstance(existing, TracerProvider) or tracer_provider is not None:
        if exporter is not None and isinstance(existing, TracerProvider):
            existing.add_span_processor(BatchSpanProcessor(exporter))
        return existing
    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    # The SDK's own exit hook waits up to 30 s per processor: ours is bounded instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter or _otlp_exporter(endpoint)))
    trace.set_tracer_provider(provider)
    atexit.register(_within, provider.shutdown, shutdown_timeout_s, "shutdown")
    return provider


def _within(action: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run ``action`` on a daemon thread and wait at most ``timeout_s`` for it.

    A collector that does not answer then costs the app ``timeout_s``, never the
    exporter's full retry schedule; the spans still pending are counted.
    """
    done = threading.Event()

    def run() -> None:
        try:
            action()
        except Exception as error:
            health.record_failure(f"provider.{what}", error)
        finally:
            done.set()

    try:
        threading.Thread(target=run, name=f"closedloop-{what}", daemon=True).start()
    except RuntimeError:  # no new threads at interpreter exit (Python 3.12.0/3.12.1)
        run()
        return True
    if done.wait(timeout_s):
        return True
    health.count(f"provider.{what}_timed_out")
    logger.warning(
        "closedloop: span %s did not finish within %.1f s (is the collector reachable?); "
        "the app goes on and unexported spans may be lost.",
        what,
        timeout_s,
    )
    return False


def _check_arguments(
    *,
    service_name: object,
    endpoint: object,
    exporter: object,
    tracer_provider: object,
    meter_provider: object,
    shutdown_timeout_s: object,
) -> None:
    require_type(
        "service_name", service_name, str, "pass a name such as 'support-bot'.", optional=True
    )
    require_type(
        "endpoint", endpoint, str, "pass a URL such as 'http://localhost:4318'.", optional=True
    )
    if isinstance(endpoint, str):
        _traces_url(endpoint)
    require_type(
        "exporter",
        exporter,
        SpanExporter,
        "pass a SpanExporter instance such as OTLPSpanExporter(), or leave it out for "
        "OTLP/HTTP to the endpoint.",
        optional=True,
    )
    # Before any provider is created: the instrumentor checks them again, with the same code.
    require_instrument_options(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        shutdown_timeout_s=shutdown_timeout_s,
    )


def instrument(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    capture_content: bool | None = None,
    redact: bool | None = None,
    redactors: Sequence[Redactor] = (),
    user_hash_key: str | bytes | None = None,
    new_user_interactions: int = 10,
    interaction_counter: InteractionCounter | None = None,
    prices: Mapping[str, Mapping[str, object]] | None = None,
    stream_usage: StreamUsage = "auto",
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
) -> trace.TracerProvider:
    """Trace every OpenAI call of this process; returns the TracerProvider in use.

    Calling it again is a no-op that returns the same provider; ``uninstrument()`` undoes
    it. ``exporter`` replaces the default OTLP/HTTP exporter (or, when the app already has
    a TracerProvider, is added to it). ``meter_provider`` receives the GenAI client
    metrics ``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``
    (default: the global MeterProvider). ``prices`` maps a model name to
    ``{"input_per_mtok", "output_per_mtok", "cached_input_per_mtok"}`` in USD.
    ``stream_usage`` says when closedloop may ask a stream for its token usage
    (``"auto"``: only endpoints known to honour ``stream_options``). Content beyond
    ``max_content_chars`` per attribute is truncated and marked. Every argument: the
    README's "Configuration" table.
    """
    runtime = current()
    with runtime.lock:
        if runtime.instrumentation is not None:
            logger.debug("closedloop.instrument() called again: already instrumented")
            return runtime.instrumentation.tracer_provider
        _check_arguments(
            service_name=service_name,
            endpoint=endpoint,
            exporter=exporter,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        settings = InstrumentationSettings.build(
            capture_content=capture_content,
            redact=redact,
            redactors=redactors,
            user_hash_key=user_hash_key,
            new_user_interactions=new_user_interactions,
            interaction_counter=interaction_counter,
            prices=prices,
            stream_usage=stream_usage,
            max_content_chars=max_content_chars,
        )
        provider = _provider(service_name, endpoint, exporter, tracer_provider, shutdown_timeout_s)
        OpenAIInstrumentor().instrument(
            tracer_provider=provider,
            meter_provider=meter_provider,
            settings=settings,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        return provider


def active_tracer_provider() -> trace.TracerProvider:
    """The provider ``instrument()`` traces with, else the global one (for feedback spans)."""
    return current().tracer_provider()


def uninstrument() -> None:
    """Restore the OpenAI client methods exactly and flush what was traced.

    The flush waits at most ``shutdown_timeout_s`` (given to ``instrument()``).
    """
    runtime = current()
    with runtime.lock:
        active = runtime.instrumentation
        if active is None:
            return
        OpenAIInstrumentor().uninstrument()
        if isinstance(active.tracer_provider, TracerProvider):
            _within(active.tracer_provider.force_flush, active.shutdown_timeout_s, "flush")
