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

from closedloop.sampling._policies.always_sample import AlwaysSample
from closedloop.sampling._policies.and_ import And
from closedloop.sampling._policies.base import Policy
from closedloop.sampling._policies.boolean_attribute import BooleanAttribute
from closedloop.sampling._policies.drop import Drop
from closedloop.sampling._policies.latency import Latency
from closedloop.sampling._policies.not_ import Not
from closedloop.sampling._policies.numeric_attribute import NumericAttribute
from closedloop.sampling._policies.ottl_condition import OttlCondition
from closedloop.sampling._policies.probabilistic import Probabilistic
from closedloop.sampling._policies.span_count import SpanCount
from closedloop.sampling._policies.status_code import StatusCodeFilter
from closedloop.sampling._policies.string_attribute import StringAttribute

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
