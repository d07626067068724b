"""How the policies' decisions become the trace's (the collector's makeDecision)."""

from __future__ import annotations

import logging

import pytest

from closedloop import _health as health
from closedloop.sampling import (
    BufferedTrace,
    CombinedDecision,
    Decision,
    Policy,
    SamplerConfig,
    combine,
)
from closedloop.sampling._policies import AlwaysSample, Drop

from .support import (
    ERROR_SPAN,
    ERRORS,
    NEVER,
    Fixed,
    Raising,
    config,
    decide,
    policy,
    recording_sampler,
    trace,
    view,
)

SAMPLED, NOT_SAMPLED, DROPPED, ERROR = (
    Decision.SAMPLED,
    Decision.NOT_SAMPLED,
    Decision.DROPPED,
    Decision.ERROR,
)


def test_any_sampled_policy_samples_and_none_is_not_sampled() -> None:
    assert decide([NEVER, ERRORS], view(**ERROR_SPAN)) is Decision.SAMPLED
    assert decide([NEVER, ERRORS], view()) is Decision.NOT_SAMPLED


def test_drop_beats_any_sampling_policy_whatever_the_order() -> None:
    drop = policy("drop", drop_sub_policy=[{"name": "d0", **ERRORS}])
    assert decide([policy("always_sample"), drop], view(**ERROR_SPAN)) is Decision.DROPPED
    assert decide([drop, policy("always_sample")], view(**ERROR_SPAN)) is Decision.DROPPED
    assert decide([policy("always_sample"), drop], view()) is Decision.SAMPLED


def test_drop_is_checked_even_when_sample_on_first_match_stops_early() -> None:
    drop = policy("drop", drop_sub_policy=[{"name": "d0", **ERRORS}])
    cfg = config(policy("always_sample"), drop, sample_on_first_match=True)
    assert combine(cfg.policies, trace(view(**ERROR_SPAN)), True) == CombinedDecision(DROPPED, "p1")


def test_invert_match_no_longer_vetoes_other_policies() -> None:
    # v0.161: invert decisions are gone; a matching invert_match policy is plain NotSampled.
    inverted = policy("string_attribute", key="k", values=["v"], invert_match=True)
    assert decide([policy("always_sample"), inverted], view(attributes={"k": "v"})) is (
        Decision.SAMPLED
    )


def test_combine_names_the_deciding_policy_and_honours_sample_on_first_match() -> None:
    cfg = config(NEVER, ERRORS, policy("always_sample"), sample_on_first_match=True)
    assert cfg.sample_on_first_match is True
    assert combine(cfg.policies, trace(view(**ERROR_SPAN)), True) == CombinedDecision(SAMPLED, "p1")
    assert combine(cfg.policies, trace(view()), False) == CombinedDecision(SAMPLED, "p2")
    assert combine(config(NEVER).policies, trace(view()), False) == CombinedDecision(
        NOT_SAMPLED, None
    )


class LongNames(Policy):
    """An app's own policy: traces with a span name longer than a limit."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(name)
        self.limit = limit

    def evaluate(self, trace: BufferedTrace) -> Decision:
        long = any(len(span.name) > self.limit for span in trace.spans)
        return Decision.SAMPLED if long else Decision.NOT_SAMPLED


def test_an_apps_own_policy_decides_next_to_the_collectors() -> None:
    collector = config(NEVER)
    cfg = SamplerConfig(decision_wait_s=1.0, policies=(*collector.policies, LongNames("long", 8)))
    sampler, forwarded = recording_sampler(cfg)
    sampler.ingest([view(1, name="short"), view(2, name="a-long-span-name")])
    sampler.drain()
    assert [span.trace_id for span in forwarded] == [2]
    assert combine(cfg.policies, trace(view(name="a-long-span-name")), False) == (
        CombinedDecision(SAMPLED, "long")
    )


# --- policies that cannot decide ------------------------------------------------------------


def test_a_raising_policy_abstains_and_the_others_decide() -> None:
    policies = (Raising("buggy"), AlwaysSample("all"))
    assert combine(policies, trace(view()), False) == CombinedDecision(SAMPLED, "all", ("buggy",))
    assert combine(policies[:1], trace(view()), False) == CombinedDecision(
        NOT_SAMPLED, None, ("buggy",)
    )


def test_a_raising_policy_is_logged_once_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policies = (Raising("buggy"), Raising("also-buggy"), AlwaysSample("all"))
    with caplog.at_level(logging.WARNING, logger="closedloop"):
        for trace_id in range(1, 4):
            combine(policies, trace(view(trace_id)), False)
    logged = [record for record in caplog.records if record.exc_info]
    assert [record.exc_info[0] for record in logged if record.exc_info] == [ZeroDivisionError] * 2
    assert ["sampling.policy.buggy" in r.getMessage() for r in logged] == [True, False]
    assert health.stats()["failures_by_site"] == {
        "sampling.policy.buggy": 3,
        "sampling.policy.also-buggy": 3,
    }


def test_a_policy_returning_something_else_than_a_decision_abstains() -> None:
    sloppy = Fixed("sloppy", "sampled")  # type: ignore[arg-type]
    assert combine((sloppy,), trace(view()), False) == CombinedDecision(
        NOT_SAMPLED, None, ("sloppy",)
    )
    failure = health.stats()["failures_by_site"]
    assert failure == {"sampling.policy.sloppy": 1}


def test_an_error_decision_abstains_like_a_raise() -> None:
    policies = (Fixed("unsure", ERROR), AlwaysSample("all"))
    assert combine(policies, trace(view()), False) == CombinedDecision(SAMPLED, "all", ("unsure",))
    assert health.stats()["failures_by_site"] == {}  # nothing raised, nothing to log


def test_a_drop_policy_that_cannot_decide_does_not_drop() -> None:
    drop = Drop("drop-unsure", [Fixed("unsure", ERROR)])
    assert combine((drop, AlwaysSample("all")), trace(view()), False) == CombinedDecision(
        SAMPLED, "all", ("drop-unsure",)
    )
    broken = Drop("drop-buggy", [Raising("buggy")])
    assert combine((AlwaysSample("all"), broken), trace(view()), False) == CombinedDecision(
        SAMPLED, "all", ("drop-buggy",)
    )


# --- any policy may drop ----------------------------------------------------------------------


@pytest.mark.parametrize("dropper_first", [True, False])
def test_dropped_from_any_policy_drops_the_trace(dropper_first: bool) -> None:
    dropper, keeper = Fixed("my-drop", DROPPED), AlwaysSample("all")
    policies = (dropper, keeper) if dropper_first else (keeper, dropper)
    assert combine(policies, trace(view()), False) == CombinedDecision(DROPPED, "my-drop")


def test_sample_on_first_match_stops_before_a_later_policys_drop() -> None:
    # The collector breaks on the first Sampled: a non-drop policy after it is not asked.
    policies = (AlwaysSample("all"), Fixed("my-drop", DROPPED))
    assert combine(policies, trace(view()), True) == CombinedDecision(SAMPLED, "all")
    assert combine(policies[::-1], trace(view()), True) == CombinedDecision(DROPPED, "my-drop")


def test_a_policy_named_empty_that_samples_is_reported_sampled() -> None:
    assert combine((AlwaysSample(""),), trace(view()), False) == CombinedDecision(SAMPLED, "")
