"""and: sampled only when every sub-policy samples."""

from __future__ import annotations

from closedloop.sampling import CombinedDecision, Decision, combine
from closedloop.sampling._policies import AlwaysSample, And

from .support import ERROR_SPAN, ERRORS, Fixed, decide, policy, trace, view


def test_and_samples_only_when_all_sub_policies_match() -> None:
    both = policy(
        "and",
        and_sub_policy=[
            {"name": "a0", **ERRORS},
            {"name": "a1", **policy("numeric_attribute", key="n", min_value=1, max_value=9)},
        ],
    )
    assert decide(both, view(**ERROR_SPAN, attributes={"n": 5})) is Decision.SAMPLED
    assert decide(both, view(**ERROR_SPAN)) is Decision.NOT_SAMPLED
    assert decide(both, view(attributes={"n": 5})) is Decision.NOT_SAMPLED


def test_and_stops_on_the_first_sub_policy_that_does_not_match_or_cannot_decide() -> None:
    unsure, never = Fixed("unsure", Decision.ERROR), Fixed("never", Decision.NOT_SAMPLED)
    always = AlwaysSample("always")
    assert And("a", [always, unsure, never]).evaluate(trace(view())) is Decision.ERROR
    assert And("a", [never, unsure]).evaluate(trace(view())) is Decision.NOT_SAMPLED
    # an erroring and abstains in combine; the trace is decided by the other policies
    assert combine((And("a", [unsure]), always), trace(view()), False) == CombinedDecision(
        Decision.SAMPLED, "always", ("a",)
    )
