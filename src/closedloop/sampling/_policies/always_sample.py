"""``always_sample``: every trace (the collector's ``always_sample.go``)."""

from __future__ import annotations

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import ReadsNoAttribute
from closedloop.sampling._trace import BufferedTrace


class AlwaysSample(ReadsNoAttribute):
    def evaluate(self, trace: BufferedTrace) -> Decision:
        return Decision.SAMPLED


__all__ = ["AlwaysSample"]
