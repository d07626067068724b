"""Health counters: ``closedloop.stats()`` and the same counts as OTel counters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from closedloop._health_counters import EVENTS_METRIC, FAILURES_METRIC, Health


def counter_points(reader: InMemoryMetricReader) -> dict[str, dict[tuple, int]]:
    """Each counter's value by its attributes."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, dict[tuple, int]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert metric.data.is_monotonic
                found[metric.name] = {
                    tuple(sorted(point.attributes.items())): point.value
                    for point in metric.data.data_points
                }
    return found


def test_failures_and_events_are_counted_in_stats_and_published(caplog):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    health = Health(provider.get_meter("closedloop"))
    for _ in range(3):
        health.record_failure("redaction", RuntimeError("boom"))
    health.record_failure("span.end", ValueError("bad"))
    health.count("stream.ended_by_gc")
    health.count("store.dropped_spans", 40)

    assert health.stats() == {
        "internal_failures": 4,
        "failures_by_site": {"redaction": 3, "span.end": 1},
        "events": {"stream.ended_by_gc": 1, "store.dropped_spans": 40},
    }
    assert counter_points(reader) == {
        FAILURES_METRIC: {(("site", "redaction"),): 3, (("site", "span.end"),): 1},
        EVENTS_METRIC: {
            (("event", "stream.ended_by_gc"),): 1,
            (("event", "store.dropped_spans"),): 40,
        },
    }
    # Logged once per site, with the traceback; later failures there are only counted.
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "closedloop: internal failure in redaction",
        "closedloop: internal failure in span.end",
    ]
    assert caplog.records[0].exc_info is not None
    provider.shutdown()


def test_reset_zeroes_the_snapshot_but_not_the_cumulative_counters():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    health = Health(provider.get_meter("closedloop"))
    health.count("x", 2)
    health.reset()
    health.count("x")
    assert health.stats()["events"] == {"x": 1}
    assert counter_points(reader)[EVENTS_METRIC] == {(("event", "x"),): 3}
    provider.shutdown()


GLOBAL_PROVIDER_APP = textwrap.dedent(
    """
    import json
    import closedloop
    from openai import OpenAI
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from closedloop.testing import OpenAICompatibleServer

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    def broken(text):
        raise RuntimeError("redactor bug")

    closedloop.instrument(exporter=InMemorySpanExporter(), user_hash_key="k", redactors=[broken])
    with OpenAICompatibleServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    closedloop.uninstrument()
    names = {
        metric.name: sum(getattr(p, "count", None) or getattr(p, "value", 0)
                         for p in metric.data.data_points)
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    print(json.dumps({"metrics": names, "stats": closedloop.stats()}))
    """
)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_metric_goes_to_the_global_meter_provider_by_default(tmp_path):
    """Without ``meter_provider=``, GenAI metrics and health counters use the app's global
    MeterProvider, even one set after closedloop was imported."""
    result = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER_APP],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"CLOSEDLOOP_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    failures = report["stats"]["internal_failures"]
    assert failures >= 1
    assert report["metrics"] == {
        "gen_ai.client.operation.duration": 1,
        "gen_ai.client.token.usage": 2,
        "closedloop.internal.failures": failures,
    }
