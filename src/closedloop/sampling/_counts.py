"""What the tail sampler counts: plain integers per sampler, and the names of the OTel
metrics that publish them summed over every sampler of the process (``_metrics.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from closedloop.sampling._decision import Decision

TRACES_RECEIVED_METRIC = "closedloop.sampler.traces.received"
TRACES_DECIDED_METRIC = "closedloop.sampler.traces.decided"
TRACES_EVICTED_METRIC = "closedloop.sampler.traces.evicted_undecided"
LATE_SPANS_METRIC = "closedloop.sampler.late_spans"
POLICY_ERRORS_METRIC = "closedloop.sampler.policy.errors"
DECISION_ATTRIBUTE = "decision"
"""The metric attribute carrying a ``Decision``'s value (``sampled``, ``not_sampled``...)."""
OUTCOME_ATTRIBUTE = "outcome"
"""The metric attribute saying what became of a late span (as ``closedloop.store.spans``)."""
POLICY_ATTRIBUTE = "policy"
"""The metric attribute naming the policy (as the collector's per-policy metrics)."""

LateSpanOutcome = Literal["forwarded", "discarded"]
"""What became of a span that arrived after its trace's decision."""


@dataclass
class SamplerCounts:
    """One sampler's counts since it started (the OTel metrics add up every sampler's)."""

    traces_received: int = 0
    traces_decided: Counter[Decision] = field(default_factory=Counter)
    late_spans: Counter[LateSpanOutcome] = field(default_factory=Counter)
    traces_evicted_undecided: int = 0
    policy_errors: Counter[str] = field(default_factory=Counter)
    """Evaluations that could not decide (raised, or returned ERROR), by policy name."""

    def add_received(self) -> None:
        self.traces_received += 1

    def add_decided(self, decision: Decision) -> None:
        self.traces_decided[decision] += 1

    def add_late_span(self, forwarded: bool) -> None:
        self.late_spans["forwarded" if forwarded else "discarded"] += 1

    def add_evicted_undecided(self) -> None:
        self.traces_evicted_undecided += 1

    def add_policy_error(self, policy: str) -> None:
        self.policy_errors[policy] += 1

    def add(self, other: SamplerCounts) -> None:
        """Add every count of ``other`` to this one."""
        self.traces_received += other.traces_received
        self.traces_decided.update(other.traces_decided)
        self.late_spans.update(other.late_spans)
        self.traces_evicted_undecided += other.traces_evicted_undecided
        self.policy_errors.update(other.policy_errors)

    def since(self, earlier: SamplerCounts) -> SamplerCounts:
        """What was counted after ``earlier``, a copy of this object's counts back then."""
        return SamplerCounts(
            self.traces_received - earlier.traces_received,
            self.traces_decided - earlier.traces_decided,
            self.late_spans - earlier.late_spans,
            self.traces_evicted_undecided - earlier.traces_evicted_undecided,
            self.policy_errors - earlier.policy_errors,
        )


__all__ = [
    "DECISION_ATTRIBUTE",
    "LATE_SPANS_METRIC",
    "OUTCOME_ATTRIBUTE",
    "POLICY_ATTRIBUTE",
    "POLICY_ERRORS_METRIC",
    "TRACES_DECIDED_METRIC",
    "TRACES_EVICTED_METRIC",
    "TRACES_RECEIVED_METRIC",
    "LateSpanOutcome",
    "SamplerCounts",
]
