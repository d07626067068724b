"""The sampler's counts as OTel metrics, without slowing the app's thread.

Counting happens on the app's thread (``ingest``) under the sampler's lock, where a
synchronous OTel counter's ``add`` costs microseconds; so a sampler only adds to the
integers of its ``SamplerCounts``. Once per tick, after releasing its lock, it adds what it
counted since the last tick to the process-wide ``SamplerTotals`` the runtime holds, which
``ObservableCounter`` callbacks read when the app's MeterProvider collects. The total only
grows, as a cumulative counter must: a discarded sampler leaves its counts in it (the last
tick's worth is added when it is garbage-collected), and nothing here holds on to a sampler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from closedloop import _telemetry as telemetry
from closedloop._runtime import current
from closedloop.sampling._counts import (
    DECISION_ATTRIBUTE,
    LATE_SPANS_METRIC,
    OUTCOME_ATTRIBUTE,
    POLICY_ATTRIBUTE,
    POLICY_ERRORS_METRIC,
    TRACES_DECIDED_METRIC,
    TRACES_EVICTED_METRIC,
    TRACES_RECEIVED_METRIC,
    SamplerCounts,
)


class Unpublished:
    """The part of one sampler's counts not yet in the process-wide total.

    It holds the counts, not the sampler, so ``weakref.finalize`` can publish the rest
    when the sampler is collected without keeping it alive."""

    def __init__(self, counts: SamplerCounts) -> None:
        self._counts = counts
        self._published = SamplerCounts()

    def take(self) -> SamplerCounts:
        """What was counted since the last ``take`` (under the lock the counts change in)."""
        new = self._counts.since(self._published)
        self._published.add(new)
        return new

    def publish(self) -> None:
        """Add the rest to the total (when nothing counts any more: the sampler is gone)."""
        publish(self.take())


class SamplerTotals:
    """Every sampler's published counts, summed (``closedloop._runtime`` holds the one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = SamplerCounts()

    def add(self, counts: SamplerCounts) -> None:
        with self._lock:
            self._total.add(counts)

    def snapshot(self) -> SamplerCounts:
        """A copy of the totals, for the metric callbacks (and tests) to read unlocked."""
        copy = SamplerCounts()
        with self._lock:
            copy.add(self._total)
        return copy


def publish(counts: SamplerCounts) -> None:
    """Add a sampler's new counts to the process-wide total the OTel metrics read."""
    current().sampler_totals().add(counts)


def _observer(
    read: Callable[[SamplerCounts], Iterable[Observation]],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return list(read(current().sampler_totals().snapshot()))

    return observe


_meter = telemetry.meter()
_meter.create_observable_counter(
    TRACES_RECEIVED_METRIC,
    [_observer(lambda total: [Observation(total.traces_received)])],
    unit="{trace}",
    description="Traces the tail sampler took into memory (a trace whose decision was no "
    "longer remembered is taken in, and counted, again).",
)
_meter.create_observable_counter(
    TRACES_DECIDED_METRIC,
    [
        _observer(
            lambda total: [
                Observation(n, {DECISION_ATTRIBUTE: decision.value})
                for decision, n in total.traces_decided.items()
            ]
        )
    ],
    unit="{trace}",
    description="Traces the tail sampler decided, by decision.",
)
_meter.create_observable_counter(
    TRACES_EVICTED_METRIC,
    [_observer(lambda total: [Observation(total.traces_evicted_undecided)])],
    unit="{trace}",
    description="Traces evicted from memory by num_traces before they were decided "
    "(their spans are lost): num_traces is too small for the traffic.",
)
_meter.create_observable_counter(
    LATE_SPANS_METRIC,
    [
        _observer(
            lambda total: [
                Observation(n, {OUTCOME_ATTRIBUTE: outcome})
                for outcome, n in total.late_spans.items()
            ]
        )
    ],
    unit="{span}",
    description="Spans that arrived after their trace was decided, by what became of them: "
    "forwarded (their trace was sampled) or discarded.",
)
_meter.create_observable_counter(
    POLICY_ERRORS_METRIC,
    [
        _observer(
            lambda total: [
                Observation(n, {POLICY_ATTRIBUTE: policy})
                for policy, n in total.policy_errors.items()
            ]
        )
    ],
    unit="{evaluation}",
    description="Policy evaluations that could not decide (the policy raised or returned "
    "ERROR); that policy abstained, the others decided the trace.",
)


__all__ = ["SamplerTotals", "Unpublished", "publish"]
