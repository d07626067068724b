"""serve's pipeline beyond one request: kept traces forwarded with --forward-otlp, and late
feedback for a dropped trace rescued on schedule."""

from __future__ import annotations

from pathlib import Path

import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _support.collector import PRODUCTION_CONFIG
from _support.waiting import wait_for
from closedloop.sampling import load
from server.serving import SeededIds, kept_by, keys, running, traffic


def test_kept_traces_are_also_forwarded_to_another_otlp_backend(tmp_path: Path) -> None:
    spans = [span for trace_spans in traffic(seed=41) for span in trace_spans]
    kept = kept_by(load(), spans)
    with running(tmp_path, name="backend") as backend:
        with running(tmp_path, f"--forward-otlp={backend.url}", name="front") as front:
            front.export(spans)
            assert front.stop() == 0  # the drain decides every trace and forwards the kept
        assert backend.stop() == 0

    assert front.span_ids("otel_traces") == kept
    assert backend.span_ids("otel_traces_recent") == kept
    (stop,) = [event for event in front.log_events() if event.get("event") == "serve.stop"]
    assert stop["pipeline"]["forward"] == {"sent": len(kept), "failed": 0, "dropped": 0}


def feedback_for(root: ReadableSpan) -> ReadableSpan:
    """A Contract 2 feedback span on ``root``, as ``closedloop.feedback`` records it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=SeededIds(52))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert root.context is not None
    parent = trace.set_span_in_context(trace.NonRecordingSpan(root.context))
    tracer = provider.get_tracer("closedloop")
    with tracer.start_as_current_span("closedloop.feedback", context=parent) as span:
        span.set_attributes(
            {"closedloop.feedback.kind": "explicit", "closedloop.feedback.name": "thumbs"}
        )
    (feedback,) = exporter.get_finished_spans()
    return feedback


def test_late_feedback_for_a_dropped_trace_is_rescued_on_schedule(tmp_path: Path) -> None:
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["processors"]["tail_sampling"]["decision_wait"] = "1s"  # decide soon, same caches
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(config))
    dropped = next(spans for spans in traffic(seed=51)[3:] if not kept_by(load(policy), spans))
    feedback = feedback_for(dropped[-1])
    with running(tmp_path, f"--policy={policy}", "--rescue-every=1s") as serve:
        serve.export(dropped)
        wait_for(lambda: serve.health()["pipeline"]["sampler"]["traces_decided"] != {})
        serve.export([feedback])  # late: the decision cache discards it
        wait_for(lambda: serve.health()["pipeline"]["rescue"]["traces"] == 1)
        pipeline = serve.health()["pipeline"]
        assert serve.stop() == 0

    assert pipeline["sampler"]["traces_decided"] == {"not_sampled": 1}
    assert pipeline["sampler"]["late_spans"] == {"discarded": 1}
    assert pipeline["rescue"]["spans"] == len(dropped) + 1
    assert serve.span_ids("otel_traces") == keys([*dropped, feedback])  # each once
    rescues = [event for event in serve.log_events() if event.get("event") == "serve.rescue"]
    assert [(event["traces"], event["spans"]) for event in rescues] == [(1, len(dropped) + 1)]
