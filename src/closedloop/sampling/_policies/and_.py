"""``and``: sampled when every sub-policy samples (the collector's ``and.go``)."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies._composite import first_non_match
from closedloop.sampling._policies.base import AttributesRead, Policy, attributes_read_by
from closedloop.sampling._trace import BufferedTrace


class And(Policy):
    def __init__(self, name: str, policies: Sequence[Policy]) -> None:
        super().__init__(name)
        self.policies = tuple(policies)

    def attributes_read(self) -> AttributesRead | None:
        return attributes_read_by(self.policies)

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return first_non_match(self.policies, trace) or Decision.SAMPLED


__all__ = ["And"]
