"""The GenAI client metrics of the OTel semantic conventions, for every call.

``gen_ai.client.operation.duration`` (s) and ``gen_ai.client.token.usage`` ({token}) with
the attributes and advisory bucket boundaries the conventions define, as the contrib
``openai-v2`` instrumentation records them, so dashboards built for those metrics work on
closedloop's too. Durations are the span's latency (streams: until the stream ends).
Calls whose span is not sampled are measured too, so the metrics count all traffic,
whatever fraction of it a head sampler keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from opentelemetry import metrics
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_TOKEN_TYPE
from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import (
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_TOKEN_USAGE,
)
from opentelemetry.util.types import AttributeValue

from closedloop import _telemetry as telemetry
from closedloop._cost import TokenUsage
from closedloop.instrumentation import _attributes as attr


@dataclass(frozen=True, slots=True)
class MetricAttributes:
    """A call's metric attributes (operation, provider, models, server) and the token
    histogram's two variants of them, built once per combination and shared by every call
    with it: an app calls a few models at a few endpoints. Never mutated."""

    call: Mapping[str, AttributeValue]
    input_tokens: Mapping[str, AttributeValue]
    output_tokens: Mapping[str, AttributeValue]

    @classmethod
    def of(cls, attributes: Mapping[str, AttributeValue]) -> MetricAttributes:
        return cls(
            attributes,
            {**attributes, GEN_AI_TOKEN_TYPE: "input"},
            {**attributes, GEN_AI_TOKEN_TYPE: "output"},
        )


# The conventions' advisory ExplicitBucketBoundaries for each histogram.
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


class ClientMetrics:
    """The two histograms of one instrumentation, from its MeterProvider."""

    def __init__(self, meter_provider: metrics.MeterProvider | None) -> None:
        meter = telemetry.meter(meter_provider)
        self._duration = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )

    def record(
        self,
        attributes: MetricAttributes,
        duration_s: float,
        usage: TokenUsage | None,
        output_tokens: bool,
        error_type: str | None,
    ) -> None:
        """One finished call. ``output_tokens`` is False for operations whose every token
        is input (embeddings)."""
        if usage is not None:
            self._tokens.record(usage.input_tokens, attributes.input_tokens)
            if output_tokens:
                self._tokens.record(usage.output_tokens, attributes.output_tokens)
        call = attributes.call
        if error_type is not None:  # the duration's only: token usage has no error.type
            call = {**call, attr.ERROR_TYPE: error_type}
        self._duration.record(duration_s, call)
