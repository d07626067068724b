"""The runtime: one object holds what the active instrumentation runs with."""

from __future__ import annotations

from openai.resources.chat.completions import Completions
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanContext

import closedloop
from closedloop._runtime import Runtime, current
from closedloop.instrumentation._settings import active_settings
from closedloop.instrumentation.openai import OpenAIInstrumentor
from closedloop.sampling import SamplerCounts


def test_instrument_sets_and_uninstrument_clears_the_active_instrumentation(instrument):
    meter_provider = metrics.NoOpMeterProvider()
    provider = instrument(
        capture_content=False, meter_provider=meter_provider, shutdown_timeout_s=2.0
    )
    active = current().instrumentation
    assert active is not None
    assert (active.tracer_provider, active.meter_provider) == (provider, meter_provider)
    assert active.shutdown_timeout_s == 2.0
    assert active_settings() is active.settings
    assert active.settings.capture_content is False
    assert current().tracer_provider() is provider
    closedloop.uninstrument()
    assert current().instrumentation is None
    assert current().tracer_provider() is trace.get_tracer_provider()
    # Nothing instrumented: feedback gets defaults from the environment, built once.
    assert active_settings() is active_settings() is not active.settings


def test_the_auto_instrumentation_path_is_the_active_one_too(monkeypatch):
    """``opentelemetry-instrument`` loads the instrumentor with no arguments: settings come
    from the environment, providers are the globals, and closedloop's calls see it."""
    monkeypatch.setenv("CLOSEDLOOP_CAPTURE_CONTENT", "false")
    original = Completions.create
    OpenAIInstrumentor().instrument()
    try:
        active = current().instrumentation
        assert active is not None
        assert active.settings.capture_content is False
        assert active.tracer_provider is trace.get_tracer_provider()
        assert active.meter_provider is metrics.get_meter_provider()
        assert closedloop.instrument() is active.tracer_provider  # already instrumented
    finally:
        closedloop.uninstrument()
    assert current().instrumentation is None
    assert Completions.create is original


def test_first_time_is_true_once_per_marker():
    runtime = Runtime()
    assert runtime.first_time(("warning", "a"))
    assert not runtime.first_time(("warning", "a"))
    assert runtime.first_time(("warning", "b"))


def test_recent_calls_and_sampler_totals_belong_to_the_runtime():
    """Held by the runtime, not by modules: another runtime shares none of it."""
    first, second = Runtime(), Runtime()
    span_context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    first.recent_calls.remember("chatcmpl-runtime", span_context)
    first.sampler_totals().add(SamplerCounts(traces_received=2))
    assert first.recent_calls.span_context_for("chatcmpl-runtime") == span_context
    assert first.sampler_totals().snapshot() == SamplerCounts(traces_received=2)
    assert second.recent_calls.span_context_for("chatcmpl-runtime") is None
    assert second.sampler_totals().snapshot() == SamplerCounts()
