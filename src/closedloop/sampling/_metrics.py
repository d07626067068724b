"""The sampler's counts as OTel metrics, without slowing the app's thread.

Counting happens on the app's thread (``ingest``) under the sampler's lock, where a
synchronous OTel counter's ``add`` costs microseconds; so a sampler only adds to the
integers of its ``Tally``. Once per tick, after releasing its lock, it adds what it
counted since the last tick to the process-wide ``SamplerTotals`` the runtime holds, which
``ObservableCounter`` callbacks read when the app's MeterProvider collects. The total only
grows, as a cumulative counter must: a discarded sampler leaves its counts in it (the last
tick's worth is added when it is garbage-collected), and nothing here holds on to a sampler.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from opentelemetry.metrics import CallbackOptions, Observation

from closedloop import _telemetry as telemetry
from closedloop._runtime import current
from closedloop.sampling._counts import (
    DECISION_ATTRIBUTE,
    LATE_SPANS_METRIC,
    OUTCOME_ATTRIBUTE,
    POLICY_ATTRIBUTE,
    POLICY_DECISIONS_METRIC,
    POLICY_ERRORS_METRIC,
    TRACES_DECIDED_METRIC,
    TRACES_EVICTED_METRIC,
    TRACES_RECEIVED_METRIC,
    SamplerCounts,
    Tally,
)


class Unpublished:
    """The part of one sampler's counts not yet in the process-wide total.

    It holds the tally, not the sampler, so ``weakref.finalize`` can publish the rest
    when the sampler is collected without keeping it alive."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._published = SamplerCounts()

    def take(self) -> SamplerCounts:
        """What was counted since the last ``take`` (under the lock the tally changes in)."""
        now = self._tally.snapshot()
        new = now.since(self._published)
        self._published = now
        return new

    def publish_collected(self) -> None:
        """Hand the rest to the total once the sampler is gone (its finalizer)."""
        current().sampler_totals().add_collected(self.take())


class SamplerTotals:
    """Every sampler's published counts, summed (``closedloop._runtime`` holds the one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Tally()
        # Counts of collected samplers. Their finalizers run wherever garbage collection
        # starts, maybe on a thread inside add() or snapshot() that holds _lock, so they
        # only append here (deque.append is atomic); add() and snapshot() take them in.
        self._collected: deque[SamplerCounts] = deque()

    def add(self, counts: SamplerCounts) -> None:
        """Add a sampler's new counts (at its tick)."""
        with self._lock:
            self._take_collected()
            self._total.add(counts)

    def add_collected(self, counts: SamplerCounts) -> None:
        """Add a collected sampler's last counts, without the lock (see ``_collected``)."""
        self._collected.append(counts)

    def snapshot(self) -> SamplerCounts:
        """The totals now, for the metric callbacks (and tests) to read unlocked."""
        with self._lock:
            self._take_collected()
            return self._total.snapshot()

    def _take_collected(self) -> None:
        """Add the collected samplers' counts to the total (callers hold ``_lock``)."""
        while self._collected:
            self._total.add(self._collected.popleft())


def publish(counts: SamplerCounts) -> None:
    """Add a sampler's new counts to the process-wide total the OTel metrics read."""
    current().sampler_totals().add(counts)


def _by(attribute: str, counts: Iterable[tuple[str, int]]) -> list[Observation]:
    return [Observation(n, {attribute: key}) for key, n in counts]


class _Sum(NamedTuple):
    """One observable counter over the totals: what it reads, and how it describes it."""

    name: str
    unit: str
    read: Callable[[SamplerCounts], list[Observation]]
    description: str


_SUMS = (
    _Sum(
        TRACES_RECEIVED_METRIC,
        "{trace}",
        lambda total: [Observation(total.traces_received)],
        "Traces the tail sampler took into memory (a trace whose decision was no longer "
        "remembered is taken in, and counted, again).",
    ),
    _Sum(
        TRACES_DECIDED_METRIC,
        "{trace}",
        lambda total: _by(
            DECISION_ATTRIBUTE,
            ((decision.value, n) for decision, n in total.traces_decided.items()),
        ),
        "Traces the tail sampler decided, by decision.",
    ),
    _Sum(
        TRACES_EVICTED_METRIC,
        "{trace}",
        lambda total: [Observation(total.traces_evicted_undecided)],
        "Traces evicted from memory by num_traces before they were decided "
        "(their spans are lost): num_traces is too small for the traffic.",
    ),
    _Sum(
        LATE_SPANS_METRIC,
        "{span}",
        lambda total: _by(OUTCOME_ATTRIBUTE, total.late_spans.items()),
        "Spans that arrived after their trace was decided, by what became of them: "
        "forwarded (their trace was sampled) or discarded.",
    ),
    _Sum(
        POLICY_ERRORS_METRIC,
        "{evaluation}",
        lambda total: _by(POLICY_ATTRIBUTE, total.policy_errors.items()),
        "Policy evaluations that could not decide (the policy raised or returned "
        "ERROR); that policy abstained, the others decided the trace.",
    ),
    _Sum(
        POLICY_DECISIONS_METRIC,
        "{trace}",
        lambda total: [
            Observation(n, {POLICY_ATTRIBUTE: policy, DECISION_ATTRIBUTE: decision.value})
            for (policy, decision), n in total.policy_decisions.items()
        ],
        "Traces each sampling policy evaluated, by policy and by what that policy decided "
        "(the collector's count_traces_sampled); the trace's own decision combines them.",
    ),
)


def _observer(
    read: Callable[[SamplerCounts], list[Observation]],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        return read(current().sampler_totals().snapshot())

    return observe


_meter = telemetry.meter()
for _sum in _SUMS:
    _meter.create_observable_counter(
        _sum.name, [_observer(_sum.read)], unit=_sum.unit, description=_sum.description
    )


__all__ = ["SamplerTotals", "Unpublished", "publish"]
