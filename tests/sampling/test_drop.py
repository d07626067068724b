"""drop: dropped only when every sub-policy samples (precedence: test_combine.py)."""

from __future__ import annotations

from closedloop.sampling import CombinedDecision, Decision, combine
from closedloop.sampling._policies import AlwaysSample, Drop

from .support import ERROR_SPAN, ERRORS, Fixed, decide, policy, trace, view


def test_drop_drops_only_when_all_sub_policies_match() -> None:
    drop = policy(
        "drop",
        drop_sub_policy=[
            {"name": "d0", **ERRORS},
            {"name": "d1", **policy("string_attribute", key="route", values=["/health"])},
        ],
    )
    always = policy("always_sample")
    both = view(**ERROR_SPAN, attributes={"route": "/health"})
    assert decide([always, drop], both) is Decision.DROPPED
    assert decide([always, drop], view(**ERROR_SPAN)) is Decision.SAMPLED
    assert decide([always, drop], view(attributes={"route": "/health"})) is Decision.SAMPLED


def test_drop_that_cannot_decide_passes_the_error_on_and_drops_nothing() -> None:
    unsure = Fixed("unsure", Decision.ERROR)
    assert Drop("d", [AlwaysSample("x"), unsure]).evaluate(trace(view())) is Decision.ERROR
    assert Drop("d", [Fixed("no", Decision.NOT_SAMPLED), unsure]).evaluate(trace(view())) is (
        Decision.NOT_SAMPLED
    )
    # combine: the drop policy abstains (it does not drop), another policy still samples
    assert combine((Drop("d", [unsure]), AlwaysSample("all")), trace(view()), False) == (
        CombinedDecision(Decision.SAMPLED, "all", ("d",))
    )
