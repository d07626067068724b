"""The sampler's counts: kept per sampler and published as closedloop's OTel metrics."""

from __future__ import annotations

import gc
import threading
import weakref
from collections import Counter
from dataclasses import FrozenInstanceError

import pytest

from _support.metrics import Sums, closedloop_sums, global_metric_reader
from _support.traffic import generate_traffic
from closedloop._runtime import current
from closedloop.sampling import (
    BufferedTrace,
    Decision,
    SamplerConfig,
    SamplerCounts,
    SpanView,
    load,
)
from closedloop.sampling._counts import (
    LATE_SPANS_METRIC,
    POLICY_DECISIONS_METRIC,
    POLICY_ERRORS_METRIC,
    TRACES_DECIDED_METRIC,
    TRACES_EVICTED_METRIC,
    TRACES_RECEIVED_METRIC,
)

from .support import (
    ERRORS,
    PRODUCTION_CONFIG,
    Raising,
    config,
    policy,
    recording_sampler,
    view,
)

SAMPLED, NOT_SAMPLED, DROPPED = Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED
SAMPLER_METRICS = (
    TRACES_RECEIVED_METRIC,
    TRACES_DECIDED_METRIC,
    TRACES_EVICTED_METRIC,
    LATE_SPANS_METRIC,
    POLICY_ERRORS_METRIC,
    POLICY_DECISIONS_METRIC,
)


def every_kind_of_count() -> SamplerConfig:
    health_checks = policy("string_attribute", key="route", values=["/health"])
    drop = policy("drop", drop_sub_policy=[{"name": "d", **health_checks}])
    caches = {"sampled_cache_size": 10, "non_sampled_cache_size": 10}
    loaded = config(ERRORS, drop, decision_wait="1s", num_traces=2, decision_cache=caches)
    return SamplerConfig(
        decision_wait_s=loaded.decision_wait_s,
        num_traces=loaded.num_traces,
        sampled_cache_size=loaded.sampled_cache_size,
        non_sampled_cache_size=loaded.non_sampled_cache_size,
        policies=(*loaded.policies, Raising("buggy")),
    )


def run_every_kind_of_count() -> SamplerCounts:
    """Five traces: one evicted undecided, two not sampled, one sampled, one dropped (the
    drop policy p1 decides first and ends the dropped one's evaluation, so the buggy policy
    fails on the three others); then a late span of a sampled and of a not-sampled trace,
    and a tick, which publishes."""
    sampler, _ = recording_sampler(every_kind_of_count())
    sampler.ingest([view(1, status=2), view(2), view(3)])  # 3 evicts 1, undecided
    sampler.drain()
    sampler.ingest([view(4, status=2), view(5, attributes={"route": "/health"})])
    sampler.drain()
    sampler.ingest([view(4, span_id=2), view(2, span_id=3)])
    sampler.tick()
    return sampler.counts


def test_a_sampler_counts_what_it_did() -> None:
    assert run_every_kind_of_count() == SamplerCounts(
        traces_received=5,
        traces_decided=Counter({NOT_SAMPLED: 2, SAMPLED: 1, DROPPED: 1}),
        late_spans=Counter({"forwarded": 1, "discarded": 1}),
        traces_evicted_undecided=1,
        policy_errors=Counter({"buggy": 3}),
        policy_decisions=Counter(
            {("p1", NOT_SAMPLED): 3, ("p1", DROPPED): 1, ("p0", NOT_SAMPLED): 2, ("p0", SAMPLED): 1}
        ),
    )


def test_each_policy_is_counted_as_far_as_the_collector_evaluates_it() -> None:
    """Drop policies first; a drop ends the evaluation, and so does, with
    sample_on_first_match, the first policy that samples: the policies after it are not
    evaluated and not counted (the collector's count_traces_sampled)."""
    health_checks = policy("string_attribute", key="route", values=["/health"])
    drop = policy("drop", drop_sub_policy=[{"name": "d", **health_checks}])
    cfg = config(ERRORS, policy("always_sample"), drop, sample_on_first_match=True)
    sampler, _ = recording_sampler(cfg)
    sampler.ingest([view(1, status=2), view(2), view(3, attributes={"route": "/health"})])
    sampler.drain()
    assert sampler.counts.traces_decided == {SAMPLED: 2, DROPPED: 1}
    assert sampler.counts.policy_decisions == {
        ("p2", NOT_SAMPLED): 2,
        ("p2", DROPPED): 1,
        ("p0", SAMPLED): 1,  # the error trace: p1 is not asked
        ("p0", NOT_SAMPLED): 1,
        ("p1", SAMPLED): 1,
    }


def test_per_policy_counts_are_what_each_policy_decides_on_generated_traffic() -> None:
    """The production policies (no drop, no first match): each one evaluates every trace,
    so its counts are its own decisions on the traces, asked one by one."""
    traffic = generate_traffic(600, seed=31, days=1)
    sampler, _ = recording_sampler(load(PRODUCTION_CONFIG))
    sampler.ingest(SpanView.of(span) for span in traffic.spans)
    sampler.drain()
    by_trace: dict[int, list[SpanView]] = {}
    for span in traffic.spans:
        by_trace.setdefault(span.context.trace_id, []).append(SpanView.of(span))
    expected: Counter[tuple[str, Decision]] = Counter(
        (each.name, each.evaluate(BufferedTrace(trace_id, spans)))
        for trace_id, spans in by_trace.items()
        for each in sampler.config.policies
    )
    counts = sampler.counts
    assert counts.policy_decisions == expected
    for name in ("errors", "feedback", "new-users", "baseline"):
        assert 0 < expected[name, SAMPLED] < len(by_trace)
        assert expected[name, SAMPLED] + expected[name, NOT_SAMPLED] == len(by_trace)
    assert counts.traces_decided[NOT_SAMPLED] + counts.traces_decided[SAMPLED] == len(by_trace)


def test_counts_are_a_snapshot_nothing_can_change() -> None:
    sampler, _ = recording_sampler(config(ERRORS, decision_wait="1s"))
    sampler.ingest([view(1, status=2)])
    earlier = sampler.counts
    sampler.drain()
    assert earlier == SamplerCounts(traces_received=1)
    assert sampler.counts.traces_decided == {SAMPLED: 1}
    with pytest.raises(FrozenInstanceError):
        earlier.traces_received = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        earlier.traces_decided[SAMPLED] = 5  # type: ignore[index]
    assert earlier.late_spans["forwarded"] == 0  # an absent key reads 0


def sampler_sums() -> Sums:
    sums, _ = closedloop_sums(global_metric_reader())
    return Counter({key: n for key, n in sums.items() if key[0] in SAMPLER_METRICS})


def test_counts_are_published_as_otel_metrics() -> None:
    before = sampler_sums()
    run_every_kind_of_count()
    added = sampler_sums()
    added.subtract(before)
    assert +added == Counter(
        {
            (TRACES_RECEIVED_METRIC, ()): 5,
            (TRACES_DECIDED_METRIC, (("decision", "not_sampled"),)): 2,
            (TRACES_DECIDED_METRIC, (("decision", "sampled"),)): 1,
            (TRACES_DECIDED_METRIC, (("decision", "dropped"),)): 1,
            (TRACES_EVICTED_METRIC, ()): 1,
            (LATE_SPANS_METRIC, (("outcome", "forwarded"),)): 1,
            (LATE_SPANS_METRIC, (("outcome", "discarded"),)): 1,
            (POLICY_ERRORS_METRIC, (("policy", "buggy"),)): 3,
            (POLICY_DECISIONS_METRIC, (("decision", "not_sampled"), ("policy", "p1"))): 3,
            (POLICY_DECISIONS_METRIC, (("decision", "dropped"), ("policy", "p1"))): 1,
            (POLICY_DECISIONS_METRIC, (("decision", "not_sampled"), ("policy", "p0"))): 2,
            (POLICY_DECISIONS_METRIC, (("decision", "sampled"), ("policy", "p0"))): 1,
        }
    )
    _, units = closedloop_sums(global_metric_reader())
    assert {name: units[name] for name in SAMPLER_METRICS} == {
        TRACES_RECEIVED_METRIC: "{trace}",
        TRACES_DECIDED_METRIC: "{trace}",
        TRACES_EVICTED_METRIC: "{trace}",
        LATE_SPANS_METRIC: "{span}",
        POLICY_ERRORS_METRIC: "{evaluation}",
        POLICY_DECISIONS_METRIC: "{trace}",
    }


def test_the_published_totals_are_the_runtimes() -> None:
    gc.collect()  # samplers of earlier tests publish their last counts now, not below
    before = current().sampler_totals().snapshot()
    counts = run_every_kind_of_count()
    assert current().sampler_totals().snapshot().since(before) == counts


def test_counts_are_published_at_each_tick_not_on_the_apps_thread() -> None:
    sampler, _ = recording_sampler(config(ERRORS, decision_wait="1s"))
    before = sampler_sums()
    sampler.ingest([view(1), view(2)])
    assert sampler_sums() == before
    sampler.tick()
    assert sampler_sums()[TRACES_RECEIVED_METRIC, ()] == before[TRACES_RECEIVED_METRIC, ()] + 2


def test_a_collected_sampler_is_not_held_and_its_counts_stay_in_the_metrics() -> None:
    sampler, _ = recording_sampler(config(ERRORS, decision_wait="1s"))
    before = sampler_sums()
    sampler.ingest([view(1)])
    sampler.tick()
    sampler.ingest([view(2)])  # counted, not yet published: no tick after it
    collected = weakref.ref(sampler)
    del sampler
    gc.collect()
    assert collected() is None
    assert sampler_sums()[TRACES_RECEIVED_METRIC, ()] == before[TRACES_RECEIVED_METRIC, ()] + 2


def test_a_sampler_collected_while_the_totals_are_locked_does_not_deadlock() -> None:
    """Garbage collection can finalize a sampler on a thread that is inside the totals'
    ``add`` or ``snapshot``, holding their lock: its last counts must not wait for it."""
    gc.collect()  # samplers of earlier tests publish their last counts now, not below
    totals = current().sampler_totals()
    before = totals.snapshot()
    sampler, _ = recording_sampler(config(ERRORS, decision_wait="1s"))
    sampler.ingest([view(1)])  # counted, not yet published: no tick after it
    collected = weakref.ref(sampler)
    last_reference = [sampler]
    del sampler

    def collect_holding_the_lock() -> None:
        with totals._lock:  # as add() and snapshot() hold it
            last_reference.clear()  # the sampler's finalizer runs here, on this thread

    thread = threading.Thread(target=collect_holding_the_lock, daemon=True)
    thread.start()
    thread.join(timeout=10)  # a hang guard, not a time bound: the thread never waits
    hung = thread.is_alive()
    if hung:
        totals._lock.release()  # let the blocked finalizer on, so later tests can collect
    assert not hung
    assert collected() is None
    assert totals.snapshot().since(before) == SamplerCounts(traces_received=1)
