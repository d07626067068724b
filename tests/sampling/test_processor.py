"""TailSamplingSpanProcessor: the sampler inside an app's TracerProvider."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from closedloop.sampling import Decision, SamplerConfig, TailSamplingSpanProcessor

from .support import (
    ERRORS,
    FEEDBACK_SPAN,
    NEVER,
    PRODUCTION_CONFIG,
    FixedIds,
    config,
    unsampled_by_baseline,
)


def processor_config() -> SamplerConfig:
    return config(ERRORS, NEVER, decision_wait="1s")


def exported_trace_ids(exporter: InMemorySpanExporter) -> list[int]:
    return [span.context.trace_id for span in exporter.get_finished_spans()]


class CountingExporter(InMemorySpanExporter):
    """Records spans; ``wait_for_spans`` returns once that many were exported."""

    def __init__(self) -> None:
        super().__init__()
        self._exported = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._exported:
            result = super().export(spans)
            self._exported.notify_all()
        return result

    def wait_for_spans(self, count: int) -> bool:
        with self._exported:
            return self._exported.wait_for(
                lambda: len(self.get_finished_spans()) >= count, timeout=60
            )


def test_the_background_thread_decides_and_exports_error_traces_only() -> None:
    exporter = CountingExporter()
    processor = TailSamplingSpanProcessor(exporter, processor_config(), tick_seconds=0.05)
    provider = TracerProvider(id_generator=FixedIds([0xA1, 0xB2]))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("plain"):
            pass
        with tracer.start_as_current_span("failing") as root:
            with tracer.start_as_current_span("child"):
                pass
            root.set_status(Status(StatusCode.ERROR))
        assert exporter.wait_for_spans(2), "the tick thread did not export the error trace"
        # the plain trace arrived first, so it was decided no later than the error trace
        assert processor.sampler.counts.traces_decided == {
            Decision.SAMPLED: 1,
            Decision.NOT_SAMPLED: 1,
        }
        assert sorted(span.name for span in exporter.get_finished_spans()) == ["child", "failing"]
        assert set(exported_trace_ids(exporter)) == {0xB2}
    finally:
        provider.shutdown()
    assert set(exported_trace_ids(exporter)) == {0xB2}


def test_processor_shutdown_decides_and_exports_pending_traces() -> None:
    exporter = InMemorySpanExporter()
    # a tick interval that never elapses in this test: only shutdown can decide
    processor = TailSamplingSpanProcessor(exporter, processor_config(), tick_seconds=3600)
    provider = TracerProvider(id_generator=FixedIds([0xC3, 0xD4]))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("failing") as span:
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("plain"):
        pass
    assert processor.force_flush() is True
    assert exporter.get_finished_spans() == ()
    assert processor.sampler.traces_in_memory == 2
    provider.shutdown()
    assert exported_trace_ids(exporter) == [0xC3]
    assert processor.sampler.counts.traces_decided == {
        Decision.SAMPLED: 1,
        Decision.NOT_SAMPLED: 1,
    }


def test_processor_loads_the_production_file_by_path() -> None:
    exporter = InMemorySpanExporter()
    processor = TailSamplingSpanProcessor(exporter, str(PRODUCTION_CONFIG), tick_seconds=3600)
    provider = TracerProvider(
        id_generator=FixedIds([unsampled_by_baseline(0x77), unsampled_by_baseline(0x7777)])
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(FEEDBACK_SPAN):
        pass
    with tracer.start_as_current_span("plain"):
        pass
    assert processor.sampler.config.decision_batches == 10
    provider.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == [FEEDBACK_SPAN]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"exporter": object(), "config": processor_config()}, "exporter="),
        ({"exporter": InMemorySpanExporter(), "config": {"policies": []}}, "config="),
        (
            {"exporter": InMemorySpanExporter(), "config": processor_config(), "tick_seconds": "1"},
            "tick_seconds=",
        ),
    ],
)
def test_wrong_argument_types_are_type_errors(arguments: dict[str, object], named: str) -> None:
    with pytest.raises(TypeError, match=named):
        TailSamplingSpanProcessor(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("tick_seconds", [0, -1.0, float("inf")])
def test_tick_seconds_must_be_positive_and_finite(tick_seconds: float) -> None:
    with pytest.raises(ValueError, match="tick_seconds="):
        TailSamplingSpanProcessor(
            InMemorySpanExporter(), processor_config(), tick_seconds=tick_seconds
        )
