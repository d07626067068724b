"""Tail sampling with the collector's own policy file, decided exactly as the collector does.

config = closedloop.sampling.load()  # the packaged copy of collector/otel-collector.yaml
processor = closedloop.sampling.TailSamplingSpanProcessor(exporter, config)
tracer_provider.add_span_processor(processor)

``load(path)`` reads another collector config instead (your own edit of the policy). An
app may also bring its own policies: subclasses of ``Policy`` in a ``SamplerConfig``.
"""

from closedloop.sampling import _dependencies  # noqa: F401  (first: names a missing extra)
from closedloop.sampling.combine import CombinedDecision, combine
from closedloop.sampling.config import SamplerConfig, SamplingConfigError, load, sampler_config
from closedloop.sampling.counts import SamplerCounts
from closedloop.sampling.decision import Decision
from closedloop.sampling.ottl import OttlError
from closedloop.sampling.policies import Policy
from closedloop.sampling.processor import TailSamplingSpanProcessor
from closedloop.sampling.sampler import TailSampler
from closedloop.sampling.trace import BufferedTrace, SpanView

__all__ = [
    "BufferedTrace",
    "CombinedDecision",
    "Decision",
    "OttlError",
    "Policy",
    "SamplerConfig",
    "SamplerCounts",
    "SamplingConfigError",
    "SpanView",
    "TailSampler",
    "TailSamplingSpanProcessor",
    "combine",
    "load",
    "sampler_config",
]
