"""``instrument()`` and ``uninstrument()``: wrong arguments fail at the call with a message
that names the argument, value and fix; a dead collector never holds the app up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import closedloop
from _support.spans import client_for, only_span
from closedloop.instrumentation._users import LRUInteractionCounter
from closedloop.instrumentation.openai import OpenAIInstrumentor


def _redactor(text: str) -> tuple[str, int]:
    return text, 0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"capture_content": "false"}, TypeError, "capture_content='false' is a str, not a bool"),
        ({"redact": "no"}, TypeError, "redact='no' is a str, not a bool"),
        ({"new_user_interactions": "10"}, TypeError, "new_user_interactions='10' is a str"),
        ({"new_user_interactions": True}, TypeError, "new_user_interactions=True is a bool"),
        ({"new_user_interactions": -1}, ValueError, "new_user_interactions=-1 is negative"),
        ({"redactors": _redactor}, TypeError, "is one redactor, not a sequence of them"),
        ({"redactors": ["EMP-1"]}, TypeError, "redactors[0]='EMP-1' is not callable"),
        ({"exporter": "otlp"}, TypeError, "exporter='otlp' is a str, not a SpanExporter"),
        ({"tracer_provider": "x"}, TypeError, "tracer_provider='x' is a str, not a TracerProvider"),
        ({"meter_provider": "x"}, TypeError, "meter_provider='x' is a str, not a MeterProvider"),
        ({"endpoint": 123}, TypeError, "endpoint=123 is a int, not a str"),
        ({"endpoint": "localhost:4318"}, ValueError, "is not an http(s) URL"),
        ({"prices": [("m", 1)]}, TypeError, "prices=[('m', 1)] is a list, not a Mapping"),
        ({"prices": {"m": 1.0}}, TypeError, "prices['m']=1.0 is a float, not a Mapping"),
        ({"interaction_counter": object()}, TypeError, "has no increment(user_hash) -> int"),
        ({"user_hash_key": 42}, TypeError, "user_hash_key=42 is a int, not a str or bytes"),
        ({"user_hash_key": ""}, ValueError, "user_hash_key='' is empty"),
        ({"stream_usage": "sometimes"}, ValueError, "stream_usage='sometimes' is not allowed"),
        ({"stream_usage": None}, TypeError, "stream_usage=None is a NoneType, not a str"),
        ({"stream_usage": True}, TypeError, "stream_usage=True is a bool, not a str"),
        ({"max_content_chars": 0}, ValueError, "max_content_chars=0 must be at least 1"),
        ({"shutdown_timeout_s": 0}, ValueError, "shutdown_timeout_s=0 must be a positive"),
        ({"shutdown_timeout_s": 10**400}, ValueError, "must be a finite number"),
        ({"service_name": 7}, TypeError, "service_name=7 is a int, not a str"),
    ],
)
def test_instrument_refuses_wrong_arguments_clearly(provider, options, error, message):
    options.setdefault("tracer_provider", provider)
    try:
        with pytest.raises(error) as raised:
            closedloop.instrument(**options)
    finally:
        closedloop.uninstrument()
    assert message in str(raised.value)


@pytest.mark.parametrize("options", [{"tracer_provider": "x"}, {"meter_provider": "x"}])
def test_instrument_and_the_instrumentor_check_providers_alike(options):
    """One check for both entry points: the same argument fails with the same message."""
    with pytest.raises((TypeError, ValueError)) as from_instrument:
        closedloop.instrument(**options)
    instrumentor = OpenAIInstrumentor()
    try:
        with pytest.raises(type(from_instrument.value)) as from_instrumentor:
            instrumentor.instrument(**options)
    finally:
        instrumentor.uninstrument()
    assert str(from_instrumentor.value) == str(from_instrument.value)


def test_a_counter_that_fails_later_never_untraces_a_call(server, exporter, instrument):
    class Flaky(LRUInteractionCounter):
        def increment(self, user_hash: str) -> int:
            raise ConnectionError("redis is down")

    instrument(interaction_counter=Flaky())
    with closedloop.context(user_id="u-1"):
        client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    attributes = only_span(exporter).attributes
    assert "user.hash" in attributes and "closedloop.user.new" not in attributes
    assert closedloop.stats()["failures_by_site"]["interaction_counter.increment"] == 1


def test_uninstrument_and_exit_with_a_dead_collector_wait_only_shutdown_timeout_s():
    """A collector that is down costs the app shutdown_timeout_s, not the retry schedule:
    the flush and the exit-time shutdown each give up waiting, and say so."""
    script = textwrap.dedent(
        """
        import json, socket
        import closedloop
        from opentelemetry import trace

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens here: every export attempt is refused and retried
        closedloop.instrument(service_name="dead", endpoint=f"http://127.0.0.1:{port}",
                              shutdown_timeout_s=0.5)
        tracer = trace.get_tracer("t")
        for _ in range(1000):
            tracer.start_span("work").end()
        closedloop.uninstrument()
        print(json.dumps(closedloop.stats()["events"]), flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"provider.flush_timed_out": 1}
    assert "span shutdown did not finish within 0.5 s" in result.stderr
