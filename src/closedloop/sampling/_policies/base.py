"""What every policy is: a name and a decision about a buffered trace.

A policy is the collector's ``PolicyEvaluator`` (``internal/sampling/policy.go``). The
sampler only calls ``evaluate``, so an app may bring its own ``Policy`` subclasses in a
``SamplerConfig`` next to the ones the collector YAML describes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from closedloop.sampling._decision import Decision
from closedloop.sampling._trace import BufferedTrace


class Policy(ABC):
    """One named policy of the ``policies`` list."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def evaluate(self, trace: BufferedTrace) -> Decision:
        """This policy's decision on the spans the trace has so far."""


def sampled_if(matched: bool) -> Decision:
    """SAMPLED when the policy's condition holds, else NOT_SAMPLED."""
    return Decision.SAMPLED if matched else Decision.NOT_SAMPLED


__all__ = ["Policy", "sampled_if"]
