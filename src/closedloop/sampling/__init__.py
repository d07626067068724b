"""Tail sampling with the collector's own policy file, decided exactly as the collector does.

config = closedloop.sampling.load()  # the packaged copy of collector/otel-collector.yaml
processor = closedloop.sampling.TailSamplingSpanProcessor(exporter, config)
tracer_provider.add_span_processor(processor)

``load(path)`` reads another collector config instead (your own edit of the policy). An
app may also bring its own policies: subclasses of ``Policy`` in a ``SamplerConfig``.
"""

from closedloop.sampling import _dependencies  # noqa: F401  (first: names a missing extra)
from closedloop.sampling._combine import CombinedDecision, combine
from closedloop.sampling._config import SamplerConfig, SamplingConfigError, load, sampler_config
from closedloop.sampling._counts import SamplerCounts
from closedloop.sampling._decision import Decision
from closedloop.sampling._ottl import OttlError
from closedloop.sampling._policies import Policy
from closedloop.sampling._processor import TailSamplingSpanProcessor
from closedloop.sampling._sampler import TailSampler, TraceState
from closedloop.sampling._trace import AttributesRead, BufferedTrace, SpanView

__all__ = [
    "AttributesRead",
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
    "TraceState",
    "combine",
    "load",
    "sampler_config",
]
