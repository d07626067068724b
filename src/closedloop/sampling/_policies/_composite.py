"""What ``and`` and ``drop`` share: they match only when every sub-policy does (the
collector's ``and.go`` and ``drop.go`` walk their sub-policies the same way)."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import Policy
from closedloop.sampling._trace import BufferedTrace


def first_non_match(policies: Sequence[Policy], trace: BufferedTrace) -> Decision | None:
    """NOT_SAMPLED (or ERROR) from the first sub-policy that does not match, else None."""
    for policy in policies:
        decision = policy.evaluate(trace)
        if decision in (Decision.NOT_SAMPLED, Decision.ERROR):
            return decision
    return None


__all__ = ["first_non_match"]
