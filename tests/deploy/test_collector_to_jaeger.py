"""The compose pipeline end to end: app (OTel SDK, OTLP) → the built collector running
collector/otel-collector.yaml → the built Jaeger v2 running jaeger/config.yaml. Jaeger
must hold exactly the traces the sampling policy keeps, feedback spans included.

Swapped, because they cannot run here: the two ClickHouse exporters (no ClickHouse server
on this machine) become file exporters, every port is a free loopback one (through the
config's own environment variables), and decision_wait is 1 s. The Jaeger exporter is the
shipped one, pointed at the test's Jaeger through JAEGER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import datetime
import functools
import random
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    StatusCode,
    Tracer,
    format_span_id,
    format_trace_id,
)
from prometheus_client.parser import text_string_to_metric_families

from _support.collector import (
    PRODUCTION_CONFIG,
    collector_binary,
    exported_spans,
    free_port,
    running_collector,
)
from _support.jaeger import Jaeger, jaeger_binary, running_jaeger
from _support.waiting import wait_for
from closedloop.feedback import Target
from closedloop.feedback._recorder import emit, tracer_for
from closedloop.sampling import BufferedTrace, Decision, SpanView, TailSampler, load

SERVICE = "closedloop-deploy-test"
DECIDED_METRIC = "otelcol_processor_tail_sampling_global_count_traces_sampled"
CLICKHOUSE_EXPORTERS = {"clickhouse/recent": "file/recent", "clickhouse/sampled": "file/sampled"}


def compose_pipeline(recent: Path, sampled: Path, metrics_port: int) -> dict[str, Any]:
    """collector/otel-collector.yaml with only what cannot run here swapped (see above),
    and the collector's own metrics served on ``metrics_port`` (to see it has decided)."""
    config: dict[str, Any] = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    exporters = config["exporters"]
    assert set(exporters) == {*CLICKHOUSE_EXPORTERS, "otlp_grpc/jaeger"}, "config changed"
    for clickhouse in CLICKHOUSE_EXPORTERS:
        del exporters[clickhouse]
    for name, path in (("file/recent", recent), ("file/sampled", sampled)):
        exporters[name] = {"path": str(path), "flush_interval": "100ms"}
    for pipeline in config["service"]["pipelines"].values():
        pipeline["exporters"] = [CLICKHOUSE_EXPORTERS.get(e, e) for e in pipeline["exporters"]]
    config["processors"]["tail_sampling"]["decision_wait"] = "1s"
    reader = {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": metrics_port}}}}
    config["service"]["telemetry"] = {
        "logs": {"level": "warn"},
        "metrics": {"level": "detailed", "readers": [reader]},
    }
    return config


def traces_decided(metrics_port: int) -> int:
    """How many traces the collector's tail sampling has decided, kept or not."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == DECIDED_METRIC
        for sample in family.samples
        if sample.name.endswith("_total")
    )


class ChosenIds(IdGenerator):
    """Trace ids in the order given (the test picks each one's baseline fate); seeded span ids."""

    def __init__(self, trace_ids: list[int]) -> None:
        self._trace_ids = iter(trace_ids)
        self._random = random.Random(7)

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1


def baseline_pools(count: int) -> tuple[list[int], list[int]]:
    """Seeded trace ids split by the shipped baseline policy (closedloop.sampling decides it
    as the collector does): ``count`` it keeps and ``count`` it does not."""
    baseline = next(p for p in load(PRODUCTION_CONFIG).policies if p.name == "baseline")
    rng = random.Random(2024)
    kept: list[int] = []
    not_kept: list[int] = []
    while len(kept) < count or len(not_kept) < count:
        trace_id = rng.getrandbits(128) or 1
        pool = kept if baseline.evaluate(BufferedTrace(trace_id)) is Decision.SAMPLED else not_kept
        if len(pool) < count:
            pool.append(trace_id)
    return kept, not_kept


@dataclass(frozen=True)
class Sent:
    """What the app sent: every span, and the trace ids of the traces that matter."""

    spans: list[ReadableSpan]
    feedback: str
    error: str
    new_user: str
    plain: list[str]


def request(
    tracer: Tracer, attributes: dict[str, Any] | None = None, error: bool = False
) -> SpanContext:
    """One app request: a server span around one LLM call; returns the call's context."""
    call_attributes = {"gen_ai.operation.name": "chat", **(attributes or {})}
    with (
        tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER),
        tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=call_attributes
        ) as call,
    ):
        if error:
            call.set_status(StatusCode.ERROR, "provider timeout")
        return call.get_span_context()


def send_traffic(collector_http_port: int) -> Sent:
    """Through the real SDK and OTLP/HTTP exporter: a trace with feedback, one with an error,
    one of a new user (none of which the baseline would keep), and plain ones, some of
    which the baseline keeps."""
    baseline_kept, baseline_not_kept = baseline_pools(4)
    special, plain_dropped = baseline_not_kept[:3], baseline_not_kept[3:]
    plain = baseline_kept + plain_dropped
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE}), id_generator=ChosenIds(special + plain)
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    endpoint = f"http://127.0.0.1:{collector_http_port}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("closedloop.tests.deploy")

    rated = request(tracer)
    call = Target(rated.trace_id, rated.span_id)
    emit(tracer_for(provider), call, "thumbs", 0, kind="explicit", timestamp_ns=time.time_ns())
    request(tracer, error=True)
    request(tracer, {"closedloop.user.new": True})
    for _ in plain:
        request(tracer)
    assert provider.force_flush(30_000)
    provider.shutdown()
    feedback, error, new_user = (format_trace_id(t) for t in special)
    plain_ids = [format_trace_id(t) for t in plain]
    return Sent(list(memory.get_finished_spans()), feedback, error, new_user, plain_ids)


def expected_kept(spans: list[ReadableSpan]) -> set[str]:
    """The trace ids closedloop's sampler keeps with the shipped policy."""
    kept: set[str] = set()
    sampler = TailSampler(
        load(PRODUCTION_CONFIG),
        lambda views: kept.update(format_trace_id(v.trace_id) for v in views),
    )
    sampler.ingest(SpanView.of(span) for span in spans)
    sampler.drain()
    return kept


def span_ids_by_trace(spans: list[ReadableSpan]) -> dict[str, set[str]]:
    by_trace: dict[str, set[str]] = {}
    for span in spans:
        trace_id = format_trace_id(span.context.trace_id)
        by_trace.setdefault(trace_id, set()).add(format_span_id(span.context.span_id))
    return by_trace


def holds(jaeger: Jaeger, trace_id: str, span_ids: set[str]) -> bool:
    """Jaeger has the trace with exactly these spans."""
    return {span["spanId"] for span in jaeger.trace_spans(trace_id)} == span_ids


def attribute(span: dict[str, Any], key: str) -> Any:
    """An OTLP JSON attribute's value (its one typed field)."""
    for item in span.get("attributes", []):
        if item["key"] == key:
            return next(iter(item["value"].values()))
    return None


def assert_feedback_in_jaeger(jaeger: Jaeger, sent: Sent) -> None:
    """The feedback span is in Jaeger, parented to the LLM call it rates (Contract 2)."""
    spans = {span["spanId"]: span for span in jaeger.trace_spans(sent.feedback)}
    feedback = [span for span in spans.values() if span["name"] == "closedloop.feedback"]
    assert len(feedback) == 1, spans
    (span,) = feedback
    assert spans[span["parentSpanId"]]["name"] == "chat gpt-4o-mini"
    assert attribute(span, "closedloop.feedback.name") == "thumbs"
    assert attribute(span, "closedloop.feedback.kind") == "explicit"
    assert [event["name"] for event in span.get("events", [])] == ["gen_ai.evaluation.result"]


def test_jaeger_holds_exactly_the_sampled_traces(tmp_path: Path) -> None:
    collector_binary()
    jaeger_binary()
    recent, sampled = tmp_path / "recent.jsonl", tmp_path / "sampled.jsonl"
    http_port, metrics_port = free_port(), free_port()
    config = compose_pipeline(recent, sampled, metrics_port)
    started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    with running_jaeger(tmp_path) as jaeger:
        env = {
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
            "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
            "JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc_endpoint,
        }
        with running_collector(config, tmp_path, http_port, env):
            sent = send_traffic(http_port)
            by_trace = span_ids_by_trace(sent.spans)
            wait_for(
                lambda: traces_decided(metrics_port) >= len(by_trace), 60,
                "the collector did not decide every trace",
            )  # fmt: skip
            kept = expected_kept(sent.spans)
            assert {sent.feedback, sent.error, sent.new_user} <= kept
            assert kept & set(sent.plain) and set(sent.plain) - kept
            for trace_id in sorted(kept):
                wait_for(
                    functools.partial(holds, jaeger, trace_id, by_trace[trace_id]), 60,
                    f"Jaeger never held all of trace {trace_id}",
                )  # fmt: skip
            assert_feedback_in_jaeger(jaeger, sent)
            # Every decision is made and every kept trace has arrived: no dropped one can.
            for trace_id in sorted(set(by_trace) - kept):
                assert jaeger.trace_spans(trace_id) == [], f"dropped {trace_id} in Jaeger"
            assert jaeger.trace_ids(SERVICE, started) == kept
    assert {t for t, _ in exported_spans(recent)} == set(by_trace)
    assert {t for t, _ in exported_spans(sampled)} == kept
