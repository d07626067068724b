"""Tail sampling with the collector's own policy file, decided exactly as the collector does.

config = closedloop.sampling.load()  # the packaged copy of collector/otel-collector.yaml
processor = closedloop.sampling.TailSamplingSpanProcessor(exporter, config)
tracer_provider.add_span_processor(processor)

``load(path)`` reads another collector config instead (your own edit of the policy).
"""

from closedloop.sampling import _dependencies  # noqa: F401  (first: names a missing extra)
from closedloop.sampling.config import SamplerConfig, SamplingConfigError, load, sampler_config
from closedloop.sampling.policies import DROPPED, NOT_SAMPLED, SAMPLED
from closedloop.sampling.processor import TailSamplingSpanProcessor
from closedloop.sampling.sampler import TailSampler
from closedloop.sampling.trace import SpanView

__all__ = [
    "DROPPED",
    "NOT_SAMPLED",
    "SAMPLED",
    "SamplerConfig",
    "SamplingConfigError",
    "SpanView",
    "TailSampler",
    "TailSamplingSpanProcessor",
    "load",
    "sampler_config",
]
