"""What the feedback tests share: a fake clock, a call to judge, and checks on the result."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_call(provider: TracerProvider) -> SpanContext:
    """A finished LLM-call span to attach feedback to."""
    span = provider.get_tracer("test").start_span("chat test-model")
    span.end()
    return span.get_span_context()


def feedback_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "closedloop.feedback"]


def assert_feedback_on(span: ReadableSpan, call: SpanContext, name: str, value: float) -> None:
    assert span.context.trace_id == call.trace_id
    assert span.parent is not None
    assert span.parent.span_id == call.span_id
    assert span.attributes["closedloop.feedback.kind"] == "implicit"
    assert span.attributes["closedloop.feedback.name"] == name
    assert span.attributes["closedloop.feedback.value"] == pytest.approx(value)
    (event,) = span.events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes["gen_ai.evaluation.name"] == name
    assert event.attributes["gen_ai.evaluation.score.value"] == pytest.approx(value)


def parents(spans: list[ReadableSpan]) -> list[int]:
    return [s.parent.span_id for s in spans if s.parent is not None]
