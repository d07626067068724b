"""Reading closedloop's own OTel metrics in tests, through the process's global provider.

closedloop's instruments come from ``closedloop._telemetry.meter()``, i.e. the global
MeterProvider, which a process can set once: the first test that needs it installs one
with an ``InMemoryMetricReader``, and every later test (of any module) reads through that
same reader. Counters are cumulative over the session, so tests compare before and after.
"""

from __future__ import annotations

from collections import Counter

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from closedloop._telemetry import METER_NAME

Sums = Counter[tuple[str, tuple[tuple[str, str], ...]]]
"""Cumulative sums by (metric name, its sorted attributes)."""


def global_metric_reader() -> InMemoryMetricReader:
    """The in-memory reader of the global MeterProvider, installed if none is set yet."""
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    provider = metrics.get_meter_provider()
    if not isinstance(provider, MeterProvider):
        raise AssertionError("the global MeterProvider is not the OTel SDK's")
    # The SDK has no public accessor for a provider's readers.
    installed = getattr(provider, "_metric_readers", ())
    readers = [reader for reader in installed if isinstance(reader, InMemoryMetricReader)]
    if not readers:
        raise AssertionError("the global MeterProvider was set without an InMemoryMetricReader")
    return readers[0]


def closedloop_sums(reader: InMemoryMetricReader) -> tuple[Sums, dict[str, str]]:
    """closedloop's counters now, and each metric's unit."""
    sums: Sums = Counter()
    units: dict[str, str] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != METER_NAME:
                continue
            for metric in scope_metrics.metrics:
                units[metric.name] = metric.unit or ""
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint):
                        labels = tuple(
                            sorted((k, str(v)) for k, v in (point.attributes or {}).items())
                        )
                        sums[metric.name, labels] += int(point.value)
    return sums, units
