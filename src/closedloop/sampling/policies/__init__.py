"""Tail-sampling policies, one module per policy type as the collector lays them out
(``processor/tailsamplingprocessor/internal/sampling/*.go``), deciding exactly as the
contrib ``tail_sampling`` processor does at the release pinned in
``collector/contrib-release.txt``.

The collector's quirks are part of the contract, because the same YAML drives both:
attribute values are read with pdata's coercions, string regexes search (unanchored),
``numeric_attribute`` treats a 0 bound as unset and reads only ints, latency is checked on
the running window after each span, probabilistic hashes with FNV-1a 64 over the salt and
the 16 trace-id bytes against an exactly computed threshold. Regexes are RE2 (google-re2),
the collector's regex engine.
"""

from closedloop.sampling.policies.always_sample import AlwaysSample
from closedloop.sampling.policies.and_ import And
from closedloop.sampling.policies.base import Policy
from closedloop.sampling.policies.boolean_attribute import BooleanAttribute
from closedloop.sampling.policies.drop import Drop
from closedloop.sampling.policies.latency import Latency
from closedloop.sampling.policies.not_ import Not
from closedloop.sampling.policies.numeric_attribute import NumericAttribute
from closedloop.sampling.policies.ottl_condition import OttlCondition
from closedloop.sampling.policies.probabilistic import Probabilistic
from closedloop.sampling.policies.span_count import SpanCount
from closedloop.sampling.policies.status_code import StatusCodeFilter
from closedloop.sampling.policies.string_attribute import StringAttribute

__all__ = [
    "AlwaysSample",
    "And",
    "BooleanAttribute",
    "Drop",
    "Latency",
    "Not",
    "NumericAttribute",
    "OttlCondition",
    "Policy",
    "Probabilistic",
    "SpanCount",
    "StatusCodeFilter",
    "StringAttribute",
]
