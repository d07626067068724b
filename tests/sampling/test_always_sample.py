"""always_sample."""

from __future__ import annotations

from closedloop.sampling import Decision

from .support import decide, policy, view


def test_always_sample_samples_any_trace() -> None:
    assert decide(policy("always_sample"), view()) is Decision.SAMPLED
    assert decide(policy("always_sample"), view(status=2, attributes={"k": "v"})) is (
        Decision.SAMPLED
    )
