"""What every policy is: a name and a decision about a buffered trace.

A policy is the collector's ``PolicyEvaluator`` (``internal/sampling/policy.go``). The
sampler only calls ``evaluate``, so an app may bring its own ``Policy`` subclasses in a
``SamplerConfig`` next to the ones the collector YAML describes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from closedloop.sampling._decision import Decision
from closedloop.sampling._trace import AttributesRead, BufferedTrace


def attributes_read_by(policies: Iterable[Policy]) -> AttributesRead | None:
    """What ``policies`` read together; None when one of them may read any attribute."""
    read = AttributesRead()
    for policy in policies:
        own = policy.attributes_read()
        if own is None:
            return None
        read |= own
    return read


class Policy(ABC):
    """One named policy of the ``policies`` list."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def evaluate(self, trace: BufferedTrace) -> Decision:
        """This policy's decision on the spans the trace has so far."""

    def attributes_read(self) -> AttributesRead | None:
        """The attribute keys ``evaluate`` reads; None (the default, for an app's own
        policies): any of them, so views keep every attribute."""
        return None


class ReadsNoAttribute(Policy):
    """A policy that decides by ids, times, status or counts alone."""

    def attributes_read(self) -> AttributesRead:
        return AttributesRead()


class ReadsOneKey(Policy):
    """A policy that reads one attribute, ``key``, of each span and its resource."""

    key: str

    def attributes_read(self) -> AttributesRead:
        keys = frozenset({self.key})
        return AttributesRead(span=keys, resource=keys)


def sampled_if(matched: bool) -> Decision:
    """SAMPLED when the policy's condition holds, else NOT_SAMPLED."""
    return Decision.SAMPLED if matched else Decision.NOT_SAMPLED


__all__ = [
    "AttributesRead",
    "Policy",
    "ReadsNoAttribute",
    "ReadsOneKey",
    "attributes_read_by",
    "sampled_if",
]
