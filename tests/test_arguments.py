"""Wrong arguments fail at the call, with a message that names the argument, value and fix."""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
import time

import pytest

import closedloop
import closedloop.feedback as fb
from closedloop.instrumentation.users import LRUInteractionCounter
from conftest import client_for, only_span


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
        ({"endpoint": 123}, TypeError, "endpoint=123 is a int, not a str"),
        ({"endpoint": "localhost:4318"}, ValueError, "is not an http(s) URL"),
        ({"prices": [("m", 1)]}, TypeError, "prices=[('m', 1)] is a list, not a Mapping"),
        ({"prices": {"m": 1.0}}, TypeError, "prices['m']=1.0 is a float, not a Mapping"),
        ({"interaction_counter": object()}, TypeError, "has no increment(user_hash) -> int"),
        ({"user_hash_key": 42}, TypeError, "user_hash_key=42 is a int, not a str or bytes"),
        ({"user_hash_key": ""}, ValueError, "user_hash_key='' is empty"),
        ({"stream_usage": "sometimes"}, ValueError, "stream_usage='sometimes' is not allowed"),
        ({"max_content_chars": 0}, ValueError, "max_content_chars=0 must be at least 1"),
        ({"shutdown_timeout_s": 0}, ValueError, "shutdown_timeout_s=0 must be a positive"),
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


TRACE = "ab" * 16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fb.record(TRACE, "rating", 7), "'rating' value=7 is out of range"),
        (lambda: fb.record(TRACE, "rating", 3.5), "rating takes a whole number from 1 to 5"),
        (lambda: fb.record(TRACE, "thumbs", 7), "'thumbs' value=7 is out of range"),
        (lambda: fb.record(TRACE, "edit_ratio", 1.5), "edit_ratio takes a number from 0 to 1"),
        (lambda: fb.record(TRACE, "safety", label="severe"), "use one of none, low, medium"),
        (
            lambda: fb.thumbs(TRACE, True, timestamp=time.time() * 1000),
            "Milliseconds? Divide by 1000.",
        ),
        (lambda: fb.thumbs(TRACE, True, timestamp=1_000.0), "is before 2000-01-01"),
        (
            lambda: fb.thumbs(
                TRACE,
                True,
                timestamp=datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc),
            ),
            "is in the future",
        ),
    ],
)
def test_feedback_outside_contract_ranges_is_refused(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value)


def test_feedback_inside_the_ranges_is_accepted(exporter, instrumented):
    for name, value in (("thumbs", 0), ("thumbs", True), ("rating", 5.0), ("edit_ratio", 0.25)):
        assert fb.record(TRACE, name, value) is not None
    assert fb.record(TRACE, "safety", label="high") is not None


def test_uninstrument_with_a_dead_collector_returns_promptly(tmp_path):
    """A collector that is down costs the app shutdown_timeout_s, not the retry schedule."""
    script = textwrap.dedent(
        """
        import socket, sys, time
        import closedloop
        from opentelemetry import trace

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens here: every export attempt is refused
        closedloop.instrument(service_name="dead", endpoint=f"http://127.0.0.1:{port}",
                              shutdown_timeout_s=1.0)
        tracer = trace.get_tracer("t")
        for _ in range(1000):
            tracer.start_span("work").end()
        started = time.monotonic()
        closedloop.uninstrument()
        print(f"uninstrument {time.monotonic() - started:.2f}", flush=True)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    total = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    uninstrument_s = float(result.stdout.split()[-1])
    # Generous bounds: without them uninstrument took 6-29 s and exit as long again.
    assert uninstrument_s < 5, result.stdout
    assert total < 20, (total, result.stdout)
