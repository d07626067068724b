"""What the tail sampler counts: a running tally per sampler, the read-only snapshots it
shows, and the names of the OTel metrics that publish them summed over every sampler of the
process (``_metrics.py``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from closedloop.sampling._decision import Decision

TRACES_RECEIVED_METRIC = "closedloop.sampler.traces.received"
TRACES_DECIDED_METRIC = "closedloop.sampler.traces.decided"
TRACES_EVICTED_METRIC = "closedloop.sampler.traces.evicted_undecided"
LATE_SPANS_METRIC = "closedloop.sampler.late_spans"
POLICY_ERRORS_METRIC = "closedloop.sampler.policy.errors"
POLICY_DECISIONS_METRIC = "closedloop.sampler.policy.decisions"
DECISION_ATTRIBUTE = "decision"
"""The metric attribute carrying a ``Decision``'s value (``sampled``, ``not_sampled``...)."""
OUTCOME_ATTRIBUTE = "outcome"
"""The metric attribute saying what became of a late span (as ``closedloop.store.spans``)."""
POLICY_ATTRIBUTE = "policy"
"""The metric attribute naming the policy (as the collector's per-policy metrics)."""

LateSpanOutcome = Literal["forwarded", "discarded"]
"""What became of a span that arrived after its trace's decision."""


@dataclass(frozen=True)
class SamplerCounts:
    """Counts as of one moment (``TailSampler.counts``): a snapshot that never changes.

    The per-key counts are read-only mappings in which an absent key reads 0.
    """

    traces_received: int = 0
    traces_decided: Mapping[Decision, int] = field(default_factory=dict)
    late_spans: Mapping[LateSpanOutcome, int] = field(default_factory=dict)
    traces_evicted_undecided: int = 0
    policy_errors: Mapping[str, int] = field(default_factory=dict)
    """Evaluations that could not decide (raised, or returned ERROR), by policy name."""
    policy_decisions: Mapping[tuple[str, Decision], int] = field(default_factory=dict)
    """Traces each top-level policy evaluated, by (policy name, its own decision): the
    collector's ``count_traces_sampled`` by ``policy`` and ``decision``. A policy after one
    that dropped the trace (or, with ``sample_on_first_match``, sampled it) is not
    evaluated, and an evaluation that failed is in ``policy_errors`` instead."""

    def __post_init__(self) -> None:
        # Own copies, so the snapshot does not follow the mappings it was given.
        for name in ("traces_decided", "late_spans", "policy_errors", "policy_decisions"):
            object.__setattr__(self, name, MappingProxyType(Counter(getattr(self, name))))

    def since(self, earlier: SamplerCounts) -> SamplerCounts:
        """What was counted after ``earlier``, a snapshot of the same counts back then."""
        return SamplerCounts(
            self.traces_received - earlier.traces_received,
            Counter(self.traces_decided) - Counter(earlier.traces_decided),
            Counter(self.late_spans) - Counter(earlier.late_spans),
            self.traces_evicted_undecided - earlier.traces_evicted_undecided,
            Counter(self.policy_errors) - Counter(earlier.policy_errors),
            Counter(self.policy_decisions) - Counter(earlier.policy_decisions),
        )


@dataclass
class Tally:
    """Running counts, changed in place under their owner's lock; ``snapshot`` shows them."""

    traces_received: int = 0
    traces_decided: Counter[Decision] = field(default_factory=Counter)
    late_spans: Counter[LateSpanOutcome] = field(default_factory=Counter)
    traces_evicted_undecided: int = 0
    policy_errors: Counter[str] = field(default_factory=Counter)
    policy_decisions: Counter[tuple[str, Decision]] = field(default_factory=Counter)

    def add_received(self) -> None:
        """A trace was taken into memory."""
        self.traces_received += 1

    def add_decided(self, decision: Decision) -> None:
        """A trace was decided."""
        self.traces_decided[decision] += 1

    def add_late_span(self, forwarded: bool) -> None:
        """A span came after its trace's decision, and followed it or not."""
        self.late_spans["forwarded" if forwarded else "discarded"] += 1

    def add_evicted_undecided(self) -> None:
        """``num_traces`` evicted a trace before its decision."""
        self.traces_evicted_undecided += 1

    def add_policy_error(self, policy: str) -> None:
        """``policy`` could not decide a trace."""
        self.policy_errors[policy] += 1

    def add_policy_decision(self, policy: str, decision: Decision) -> None:
        """``policy`` decided ``decision`` for a trace."""
        self.policy_decisions[policy, decision] += 1

    def add(self, counts: SamplerCounts) -> None:
        """Add every count of ``counts``."""
        self.traces_received += counts.traces_received
        self.traces_decided.update(counts.traces_decided)
        self.late_spans.update(counts.late_spans)
        self.traces_evicted_undecided += counts.traces_evicted_undecided
        self.policy_errors.update(counts.policy_errors)
        self.policy_decisions.update(counts.policy_decisions)

    def snapshot(self) -> SamplerCounts:
        """The counts as they are now, in a copy that later counting leaves alone."""
        return SamplerCounts(
            self.traces_received,
            self.traces_decided,
            self.late_spans,
            self.traces_evicted_undecided,
            self.policy_errors,
            self.policy_decisions,
        )


__all__ = [
    "DECISION_ATTRIBUTE",
    "LATE_SPANS_METRIC",
    "OUTCOME_ATTRIBUTE",
    "POLICY_ATTRIBUTE",
    "POLICY_DECISIONS_METRIC",
    "POLICY_ERRORS_METRIC",
    "TRACES_DECIDED_METRIC",
    "TRACES_EVICTED_METRIC",
    "TRACES_RECEIVED_METRIC",
    "LateSpanOutcome",
    "SamplerCounts",
    "Tally",
]
