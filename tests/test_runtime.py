"""The runtime: one object holds what the active instrumentation runs with."""

from __future__ import annotations

from openai.resources.chat.completions import Completions
from opentelemetry import metrics, trace

import closedloop
from closedloop._runtime import Runtime, current
from closedloop.instrumentation._settings import active_settings
from closedloop.instrumentation.openai import OpenAIInstrumentor


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
