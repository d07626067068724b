"""not: the sub-policy's decision inverted."""

from __future__ import annotations

from closedloop.sampling import CombinedDecision, Decision, combine
from closedloop.sampling._policies import AlwaysSample, Not

from .support import ERROR_SPAN, ERRORS, Fixed, Raising, decide, policy, trace, view


def test_not_inverts_its_sub_policy() -> None:
    not_errors = policy("not", not_sub_policy={"name": "n0", **ERRORS})
    assert decide(not_errors, view(**ERROR_SPAN)) is Decision.NOT_SAMPLED
    assert decide(not_errors, view()) is Decision.SAMPLED


def test_not_passes_an_error_through() -> None:
    assert Not("n", Fixed("unsure", Decision.ERROR)).evaluate(trace(view())) is Decision.ERROR


def test_not_of_a_raising_policy_abstains_under_the_nots_name() -> None:
    policies = (Not("not-buggy", Raising("buggy")), AlwaysSample("all"))
    assert combine(policies, trace(view()), False) == CombinedDecision(
        Decision.SAMPLED, "all", ("not-buggy",)
    )
