"""``not``: the sub-policy's decision inverted; other decisions pass through (the
collector's ``not.go``)."""

from __future__ import annotations

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import AttributesRead, Policy
from closedloop.sampling._trace import BufferedTrace

_INVERSE = {Decision.SAMPLED: Decision.NOT_SAMPLED, Decision.NOT_SAMPLED: Decision.SAMPLED}


class Not(Policy):
    def __init__(self, name: str, policy: Policy) -> None:
        super().__init__(name)
        self.policy = policy

    def attributes_read(self) -> AttributesRead | None:
        return self.policy.attributes_read()

    def evaluate(self, trace: BufferedTrace) -> Decision:
        decision = self.policy.evaluate(trace)
        return _INVERSE.get(decision, decision)


__all__ = ["Not"]
