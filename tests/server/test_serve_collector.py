"""The real OpenTelemetry Collector, its OTLP/HTTP exporter (``otlp_http``, formerly
``otlphttp``) pointed at serve: what an app sends through it is stored and sampled as if
sent to serve directly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from _support.collector import collector_binary, free_port, running_collector
from _support.tools import missing
from _support.waiting import wait_for
from closedloop.sampling import load
from server.serving import kept_by, keys, running, traffic


def collector_with_otlphttp() -> None:
    binary = collector_binary()
    components = subprocess.run(
        [str(binary), "components"], capture_output=True, text=True, check=True
    ).stdout
    if "name: otlp_http\n" not in components:
        missing(
            f"{binary} has no otlp_http exporter: add go.opentelemetry.io/collector/exporter/"
            "otlphttpexporter to collector/builder-config.yaml and run `make collector`",
            "CLOSEDLOOP_REQUIRE_COLLECTOR",
        )


def test_spans_through_the_collector_otlphttp_exporter_are_stored(tmp_path: Path) -> None:
    collector_with_otlphttp()
    traces = traffic(seed=31)
    spans = [span for trace_spans in traces for span in trace_spans]
    receiver_port = free_port()
    with running(tmp_path) as serve:
        config = {
            "receivers": {
                "otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{receiver_port}"}}}
            },
            # gzip and protobuf: the exporter's defaults
            "exporters": {"otlp_http": {"endpoint": serve.url}},
            "service": {
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
                "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_http"]}},
            },
        }
        with running_collector(config, tmp_path, receiver_port):
            exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver_port}/v1/traces")
            for start in range(0, len(traces), 8):
                batch = [span for trace_spans in traces[start : start + 8] for span in trace_spans]
                assert exporter.export(batch) is SpanExportResult.SUCCESS
            exporter.shutdown()
            wait_for(lambda: serve.health()["pipeline"]["spans_accepted"] == len(spans))
        assert serve.stop() == 0

    assert serve.span_ids("otel_traces_recent") == keys(spans)
    assert serve.span_ids("otel_traces") == kept_by(load(), spans)
