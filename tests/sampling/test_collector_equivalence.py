"""closedloop's tail sampler keeps exactly what the real collector keeps, and counts each
policy's decisions as the collector's own metric does.

The collector is built from upstream modules (`make collector`) and run with the
production policies from collector/otel-collector.yaml, its exporters swapped for the
file exporter (and, where a test says so, its decision caches resized); the same generated
traffic goes to both over the same arrival order.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Span, format_span_id, format_trace_id
from prometheus_client.parser import text_string_to_metric_families

from _support.collector import (
    LB_CONFIG,
    PRODUCTION_CONFIG,
    collector_binary,
    exported_spans,
    free_port,
    running_collector,
    sampling_config,
)
from _support.traffic import batches, generate_traffic
from closedloop.sampling import (
    BufferedTrace,
    Decision,
    Policy,
    SamplerCounts,
    SpanView,
    TailSampler,
    load,
    sampler_config,
)

LATE_AFTER_NS = 60 * 1_000_000_000


def waves(seed: int, requests: int) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """Calls and early feedback first. Late, after every decision: feedback given more than
    a minute after its call, and the request (root) span of every third trace, as when a
    request ends after its trace was decided. A late root would not sample on its own, late
    feedback always would: together they show whether late spans follow their trace."""
    traffic = generate_traffic(requests, seed=seed, days=1)
    late_ids = {
        item.span_id
        for item in traffic.feedback
        if item.timestamp_ns - item.call.start_ns > LATE_AFTER_NS
    }

    def is_late(span: ReadableSpan) -> bool:
        late_root = span.parent is None and span.context.trace_id % 3 == 0
        return late_root or format_span_id(span.context.span_id) in late_ids

    first = [s for s in traffic.spans if not is_late(s)]
    late = [s for s in traffic.spans if is_late(s)]
    return first, late


def python_decisions(
    config: dict[str, Any], *spans_by_wave: list[ReadableSpan]
) -> set[tuple[str, str]]:
    return python_run(config, *spans_by_wave)[0]


def python_run(
    config: dict[str, Any], *spans_by_wave: list[ReadableSpan]
) -> tuple[set[tuple[str, str]], SamplerCounts]:
    """What closedloop's sampler keeps of each wave, decided before the next, and its counts."""
    kept: set[tuple[str, str]] = set()

    def forward(views: list[SpanView]) -> None:
        kept.update((format_trace_id(v.trace_id), format_span_id(v.span_id)) for v in views)

    sampler = TailSampler(sampler_config(config["processors"]["tail_sampling"]), forward)
    for wave in spans_by_wave:
        sampler.ingest(SpanView.of(span) for span in wave)
        sampler.drain()
    assert sampler.counts.traces_decided[Decision.SAMPLED] > 0
    return kept, sampler.counts


POLICY_METRIC = "otelcol_processor_tail_sampling_count_traces_sampled"


def serving_policy_metrics(config: dict[str, Any], port: int) -> None:
    """Have the collector serve its own metrics for Prometheus on ``port``."""
    reader = {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": port}}}}
    config["service"]["telemetry"]["metrics"] = {"level": "detailed", "readers": [reader]}


def collector_policy_decisions(port: int) -> Counter[tuple[str, Decision]]:
    """The collector's count of traces by policy and that policy's decision."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: Counter[tuple[str, Decision]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == POLICY_METRIC:
            for sample in family.samples:
                key = (sample.labels["policy"], Decision(sample.labels["decision"]))
                counts[key] += int(sample.value)
    return counts


def send(port: int, spans: list[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    for batch in batches(spans, 400):
        assert exporter.export(batch).name == "SUCCESS"
    exporter.shutdown()


def wait_until_quiet(*paths: Path, settle: float = 1.5, minimum: float = 3.0) -> None:
    """Decisions come on 1 s ticks: wait past decision_wait until the output stops growing."""
    started = last_change = time.monotonic()
    sizes = None
    while time.monotonic() - started < 60:
        current = [p.stat().st_size if p.exists() else 0 for p in paths]
        if current != sizes:
            sizes, last_change = current, time.monotonic()
        if time.monotonic() - started >= minimum and time.monotonic() - last_change >= settle:
            return
        time.sleep(0.1)


def test_collector_validates_both_production_configs() -> None:
    binary = collector_binary()
    for config in (PRODUCTION_CONFIG, LB_CONFIG):
        result = subprocess.run(
            [str(binary), "validate", "--config", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


# Decision cache sizings: the production one, and each cache alone (the collector then keeps
# traces with the other decision in memory, decided, so their late spans still follow them).
CACHE_SIZINGS = {
    "production": None,
    "sampled-only": {"sampled_cache_size": 200_000, "non_sampled_cache_size": 0},
    "non-sampled-only": {"sampled_cache_size": 0, "non_sampled_cache_size": 1_000_000},
    "none": {"sampled_cache_size": 0, "non_sampled_cache_size": 0},
}


@pytest.mark.parametrize("decision_cache", list(CACHE_SIZINGS.values()), ids=list(CACHE_SIZINGS))
def test_python_sampler_keeps_exactly_what_the_collector_keeps(
    tmp_path: Path, decision_cache: dict[str, int] | None
) -> None:
    collector_binary()
    first, late = waves(seed=21, requests=2000)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    output = tmp_path / "kept.jsonl"
    config = sampling_config(
        output, http_port=http_port, grpc_port=grpc_port, decision_cache=decision_cache
    )
    serving_policy_metrics(config, metrics_port)
    with running_collector(config, tmp_path, http_port):
        send(http_port, first)
        wait_until_quiet(output)
        send(http_port, late)
        wait_until_quiet(output)
        collector_counts = collector_policy_decisions(metrics_port)
    from_collector = exported_spans(output)
    from_python, python_counts = python_run(config, first, late)
    trace_count = len({s.context.trace_id for s in first})
    assert trace_count >= 2000
    assert len(first) + len(late) > 5000 and len(late) > 300
    kept_traces = {trace for trace, _ in from_python}
    assert 0.3 * trace_count < len(kept_traces) < 0.95 * trace_count
    late_traces = {format_trace_id(s.context.trace_id) for s in late}
    assert late_traces & kept_traces and late_traces - kept_traces  # late spans on both sides
    assert from_collector == from_python
    assert {name for name, _ in collector_counts} == {"errors", "feedback", "new-users", "baseline"}
    assert python_counts.policy_decisions == collector_counts


def test_scale_out_decides_each_trace_in_one_place(tmp_path: Path) -> None:
    collector_binary()
    first, late = waves(seed=5, requests=500)
    backends = []
    for index in range(2):
        http_port, grpc_port = free_port(), free_port()
        output = tmp_path / f"kept-{index}.jsonl"
        backends.append(
            (sampling_config(output, http_port=http_port, grpc_port=grpc_port), grpc_port, output)
        )
    lb_http, lb_grpc = free_port(), free_port()
    lb = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "http": {"endpoint": f"127.0.0.1:{lb_http}"},
                    "grpc": {"endpoint": f"127.0.0.1:{lb_grpc}"},
                }
            }
        },
        "exporters": {
            "load_balancing": {
                "routing_key": "traceID",
                "protocol": {"otlp": {"timeout": "5s", "tls": {"insecure": True}}},
                "resolver": {
                    "static": {"hostnames": [f"127.0.0.1:{port}" for _, port, _ in backends]}
                },
            }
        },
        "service": {
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["load_balancing"]}},
        },
    }
    outputs = [output for _, _, output in backends]
    with (
        running_collector(backends[0][0], tmp_path, backends[0][1]),
        running_collector(backends[1][0], tmp_path, backends[1][1]),
        running_collector(lb, tmp_path, lb_http),
    ):
        send(lb_http, first)
        wait_until_quiet(*outputs)
        send(lb_http, late)
        wait_until_quiet(*outputs)
    per_backend = [exported_spans(output) for output in outputs]
    traces = [{trace for trace, _ in kept} for kept in per_backend]
    assert traces[0] and traces[1], "both tail-sampling collectors must receive traces"
    assert not traces[0] & traces[1], "a trace was decided in two places"
    assert per_backend[0] | per_backend[1] == python_decisions(backends[0][0], first, late)


def test_the_sampler_loads_the_production_policies() -> None:
    loaded = load(PRODUCTION_CONFIG)
    assert [policy.name for policy in loaded.policies] == [
        "errors",
        "feedback",
        "new-users",
        "baseline",
    ]
    assert (loaded.decision_wait_s, loaded.num_traces) == (10.0, 100_000)


class _TraceIdsTheBaselineDrops(RandomIdGenerator):
    """Random ids, keeping only trace ids the production baseline does not sample, so that
    only the feedback rule can keep a trace."""

    def __init__(self, baseline: Policy) -> None:
        self._baseline = baseline

    def generate_trace_id(self) -> int:
        while True:
            trace_id = super().generate_trace_id()
            if self._baseline.evaluate(BufferedTrace(trace_id)) is Decision.NOT_SAMPLED:
                return trace_id


def feedback_rule_traces() -> tuple[list[ReadableSpan], set[tuple[str, str]]]:
    """Traces only the feedback rule could keep, and the spans it must keep: a span is
    feedback iff it is named closedloop.feedback (docs/architecture.md Contract 2), with or
    without a closedloop.feedback.kind attribute; that attribute on any other span is not
    feedback."""
    baseline = next(p for p in load(PRODUCTION_CONFIG).policies if p.name == "baseline")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "app"}),
        id_generator=_TraceIdsTheBaselineDrops(baseline),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    expected: set[tuple[str, str]] = set()

    def keep(span: Span) -> None:
        context = span.get_span_context()
        expected.add((format_trace_id(context.trace_id), format_span_id(context.span_id)))

    with tracer.start_as_current_span("closedloop.feedback") as no_kind:
        keep(no_kind)
    with tracer.start_as_current_span("handle_request") as root:
        keep(root)
        with tracer.start_as_current_span("closedloop.feedback") as named:
            named.set_attribute("closedloop.feedback.kind", "outcome")
            keep(named)
    with tracer.start_as_current_span("chat gpt-4o") as kind_only:
        kind_only.set_attribute("closedloop.feedback.kind", "explicit")
    with (
        tracer.start_as_current_span("handle_request"),
        tracer.start_as_current_span("feedback") as near_miss,
    ):
        near_miss.set_attribute("closedloop.feedback.kind", "judge")
    provider.shutdown()
    return list(exporter.get_finished_spans()), expected


def test_feedback_is_recognised_by_span_name_alone_by_both(tmp_path: Path) -> None:
    collector_binary()
    spans, expected = feedback_rule_traces()
    http_port, grpc_port = free_port(), free_port()
    output = tmp_path / "kept.jsonl"
    config = sampling_config(output, http_port=http_port, grpc_port=grpc_port)
    with running_collector(config, tmp_path, http_port):
        send(http_port, spans)
        wait_until_quiet(output)
    assert {"closedloop": python_decisions(config, spans), "collector": exported_spans(output)} == {
        "closedloop": expected,
        "collector": expected,
    }
