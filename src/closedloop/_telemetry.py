"""closedloop's own telemetry, published through the OpenTelemetry metrics API.

Every part (instrumentation, exporter, sampler, health counters) creates its instruments
from this one meter, so whatever MeterProvider the app configures (OTLP, Prometheus, a
console reader) shows them next to the app's own metrics. Until the app sets a provider
the API's proxy meter costs next to nothing, and instruments created before that bind to
the provider once it is set.
"""

from __future__ import annotations

from opentelemetry import metrics

from closedloop import __version__

METER_NAME = "closedloop"


def meter(meter_provider: metrics.MeterProvider | None = None) -> metrics.Meter:
    """The meter every closedloop instrument comes from (default: the global provider)."""
    return metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
