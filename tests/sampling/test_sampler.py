"""TailSampler: the collector's timing (1 s ticks, decision_wait batches), num_traces
eviction and decision caches, and what late spans do."""

from __future__ import annotations

import pytest

from closedloop import _health as health
from closedloop.sampling import BufferedTrace, Decision, Policy, SamplerConfig, TailSampler

from .support import ERRORS, Raising, config, policy, recording_sampler, view

SAMPLED, NOT_SAMPLED, DROPPED = Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED
CACHES = {"sampled_cache_size": 10, "non_sampled_cache_size": 10}

# --- timing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("wait", "batches"), [("3s", 3), ("1s", 1), ("500ms", 1), ("2.9s", 2)])
def test_decision_batches(wait: str, batches: int) -> None:
    assert config(ERRORS, decision_wait=wait).decision_batches == batches


def test_trace_is_decided_on_the_tick_after_decision_wait() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="3s"))
    sampler.ingest([view(7, status=2)])
    assert [sampler.tick() for _ in range(3)] == [0, 0, 0]
    assert forwarded == []
    assert sampler.tick() == 1
    assert [span.trace_id for span in forwarded] == [7]
    assert sampler.counts.traces_decided[SAMPLED] == 1


def test_a_trace_joins_the_batch_of_its_first_span() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="2s"))
    sampler.ingest([view(1, span_id=1)])
    sampler.tick()
    sampler.ingest([view(1, span_id=2, status=2), view(2, span_id=3, status=2)])
    assert sampler.tick() == 0
    assert sampler.tick() == 1  # trace 1, with both spans; trace 2 is a batch later
    assert sorted(span.span_id for span in forwarded) == [1, 2]
    assert sampler.tick() == 1
    assert sorted(span.span_id for span in forwarded) == [1, 2, 3]


def test_drain_decides_every_pending_trace() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="10s"))
    sampler.ingest([view(1, status=2), view(2)])
    sampler.tick()
    sampler.ingest([view(3, status=2)])
    assert sampler.drain() == 3
    assert sorted(span.trace_id for span in forwarded) == [1, 3]
    assert sampler.counts.traces_decided[NOT_SAMPLED] == 1


# --- num_traces -------------------------------------------------------------------------------


def test_num_traces_evicts_the_oldest_trace_even_undecided() -> None:
    sampler, forwarded = recording_sampler(
        config(policy("always_sample"), decision_wait="1s", num_traces=2)
    )
    sampler.ingest([view(1, span_id=1), view(2, span_id=2)])
    sampler.ingest([view(1, span_id=4)])  # a newer span does not make trace 1 newer
    sampler.ingest([view(3, span_id=3)])
    assert sampler.counts.traces_evicted_undecided == 1
    assert sampler.traces_in_memory == 2
    sampler.drain()
    assert sorted(span.trace_id for span in forwarded) == [2, 3]


def test_decided_traces_held_without_caches_are_evicted_without_counting() -> None:
    sampler, _ = recording_sampler(
        config(policy("always_sample"), decision_wait="1s", num_traces=2)
    )
    sampler.ingest([view(1), view(2)])
    sampler.drain()
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(3)])
    assert sampler.traces_in_memory == 2
    assert sampler.counts.traces_evicted_undecided == 0


def test_num_traces_evicts_by_admission_of_the_traces_in_memory_now() -> None:
    """A trace that left memory leaves the eviction order too (the collector removes its
    deleteTraceQueue element), so the same trace id admitted again is the newest trace,
    and decided traces kept in memory are evicted in turn, uncounted."""
    caches = {"sampled_cache_size": 1, "non_sampled_cache_size": 0}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", num_traces=3, decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1), view(2, span_id=2, status=2)])
    sampler.drain()  # 1 stays (not sampled, no cache); 2 leaves, cached
    sampler.ingest([view(6, span_id=6), view(3, span_id=3, status=2)])
    sampler.drain()  # 6 stays; 3 leaves, cached, and pushes 2 out of the size-1 cache
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(2, span_id=4, status=2)])  # decided anew: admitted after 6
    sampler.ingest([view(7, span_id=7)])  # evicts 1
    sampler.ingest([view(8, span_id=8)])  # evicts 6, not the re-admitted 2
    assert sampler.counts.traces_evicted_undecided == 0
    sampler.drain()
    assert [span.span_id for span in forwarded] == [2, 3, 4]


def test_max_spans_evicts_the_oldest_undecided_traces_and_counts_them() -> None:
    sampler = TailSampler(config(ERRORS, decision_wait="5s"), lambda spans: None, max_spans=10)
    sampler.ingest([view(1, span_id=n, status=2) for n in range(1, 7)])  # 6 spans
    sampler.ingest([view(2, span_id=n) for n in range(11, 15)])  # 4 more: 10, at the cap
    assert (sampler.spans_in_memory, sampler.counts.traces_evicted_undecided) == (10, 0)
    sampler.ingest([view(3, span_id=21)])  # 11: the oldest trace goes, down to 9 or fewer
    assert sampler.spans_in_memory == 5
    assert sampler.traces_in_memory == 2
    assert sampler.counts.traces_evicted_undecided == 1
    sampler.drain()
    assert sampler.spans_in_memory == 0


def test_one_endless_trace_cannot_outgrow_max_spans() -> None:
    sampler = TailSampler(config(ERRORS, decision_wait="5s"), lambda spans: None, max_spans=100)
    for batch in range(50):
        sampler.ingest([view(7, span_id=batch * 100 + n) for n in range(1, 40)])
        assert sampler.spans_in_memory <= 100
    assert sampler.counts.traces_evicted_undecided > 0


# --- decision caches and late spans -----------------------------------------------------------


def test_with_caches_late_spans_follow_the_cached_decision() -> None:
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=CACHES)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 0  # decided traces leave memory
    assert [span.span_id for span in forwarded] == [1]

    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]  # forwarded at once
    assert sampler.counts.late_spans == {"forwarded": 1, "discarded": 1}
    assert sampler.traces_in_memory == 0
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]  # the error late span stays dropped


def test_without_caches_decided_traces_stay_in_memory_and_late_spans_follow() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="1s"))
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts.late_spans == {"forwarded": 1, "discarded": 1}


def test_with_only_a_sampled_cache_not_sampled_traces_stay_and_late_spans_stay_dropped() -> None:
    """The collector evicts a decided trace only when its decision's cache stored it: a
    not-sampled trace with no not-sampled cache stays in memory, decided, so a late span that
    would sample on its own (late feedback, here an error) is dropped, not kept alone."""
    caches = {"sampled_cache_size": 10, "non_sampled_cache_size": 0}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 1  # trace 2, decided not sampled
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts.late_spans == {"forwarded": 1, "discarded": 1}
    assert sampler.counts.traces_decided[SAMPLED] == 1  # trace 2 was not decided anew


def test_with_only_a_non_sampled_cache_sampled_traces_stay_and_late_spans_follow() -> None:
    """A sampled trace with no sampled cache stays in memory, decided, so a late span that
    would not sample on its own (a stream ending late) still follows its trace."""
    caches = {"sampled_cache_size": 0, "non_sampled_cache_size": 10}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 1  # trace 1, decided sampled
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]  # forwarded at once
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts.late_spans == {"forwarded": 1, "discarded": 1}
    assert sampler.counts.traces_decided[NOT_SAMPLED] == 1  # trace 2 was not decided anew


@pytest.mark.parametrize("caches", [CACHES, {}], ids=["cached", "in memory"])
def test_trace_state_says_which_traces_the_sampler_writes_itself(caches: dict[str, int]) -> None:
    sampler, _ = recording_sampler(config(ERRORS, decision_wait="1s", decision_cache=caches))
    assert sampler.trace_state(1) == "unknown"
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    assert (sampler.trace_state(1), sampler.trace_state(2)) == ("pending", "pending")
    sampler.drain()
    assert (sampler.trace_state(1), sampler.trace_state(2)) == ("kept", "dropped")
    assert sampler.trace_state(3) == "unknown"


def test_a_late_span_of_a_dropped_trace_is_dropped() -> None:
    drop = policy("drop", drop_sub_policy=[{"name": "d", **ERRORS}])
    sampler, forwarded = recording_sampler(
        config(policy("always_sample"), drop, decision_wait="1s")
    )
    sampler.ingest([view(1, status=2)])
    sampler.drain()
    sampler.ingest([view(1, span_id=2)])
    assert forwarded == []
    assert sampler.counts.traces_decided == {DROPPED: 1}
    assert sampler.counts.late_spans == {"discarded": 1}


def test_a_span_later_than_the_cache_is_decided_anew() -> None:
    caches = {"sampled_cache_size": 1, "non_sampled_cache_size": 1}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2)])
    sampler.drain()
    sampler.ingest([view(2, span_id=2, status=2)])
    sampler.drain()  # trace 2's decision pushes trace 1 out of the size-1 cache
    sampler.ingest([view(1, span_id=3)])
    assert sampler.counts.late_spans["forwarded"] == 0
    assert sampler.traces_in_memory == 1
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 2]  # decided anew: not an error
    assert sampler.counts.traces_received == 3


# --- policies that fail ----------------------------------------------------------------------


def test_a_raising_policy_costs_no_trace_of_the_batch() -> None:
    policies = (Raising("buggy"), *config(ERRORS).policies)
    sampler, forwarded = recording_sampler(SamplerConfig(decision_wait_s=1.0, policies=policies))
    sampler.ingest([view(1, status=2), view(2), view(3, status=2)])
    assert sampler.drain() == 3
    assert sorted(span.trace_id for span in forwarded) == [1, 3]
    assert sampler.counts.traces_decided == {SAMPLED: 2, NOT_SAMPLED: 1}
    assert sampler.counts.policy_errors == {"buggy": 3}


class BreaksTheTrace(Policy):
    """An app's policy with a worse bug: it breaks trace 2, which it is handed, and samples."""

    def evaluate(self, trace: BufferedTrace) -> Decision:
        if trace.trace_id == 2:
            trace.spans = None  # type: ignore[assignment]
        return SAMPLED


def test_a_trace_that_cannot_be_decided_is_given_up_and_the_rest_are_decided() -> None:
    cfg = SamplerConfig(decision_wait_s=1.0, policies=(BreaksTheTrace("vandal"),))
    sampler, forwarded = recording_sampler(cfg)
    sampler.ingest([view(1), view(2), view(3)])
    assert sampler.drain() == 3
    assert sorted(span.trace_id for span in forwarded) == [1, 3]
    assert sampler.counts.traces_decided == {SAMPLED: 2, Decision.ERROR: 1}
    assert health.stats()["failures_by_site"] == {"sampling.decide": 1}
    sampler.ingest([view(2, span_id=2)])  # not kept: its late spans are discarded
    assert sampler.counts.late_spans == {"discarded": 1}
    assert forwarded[2:] == []


# --- arguments --------------------------------------------------------------------------------


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="config="):
        TailSampler({"policies": []}, print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="forward="):
        TailSampler(SamplerConfig(), "print")  # type: ignore[arg-type]
