"""What a policy, and then the sampler, decides about a trace.

The names are the collector's ``sampling.Decision`` values that closedloop's policies
can return (``internal/sampling/policy.go`` in the tail_sampling processor); the values
are the spellings closedloop's metrics carry in their ``decision`` attribute.
"""

from __future__ import annotations

import enum


class Decision(enum.Enum):
    """A trace's sampling decision."""

    SAMPLED = "sampled"
    """Keep the trace (and forward its late spans)."""
    NOT_SAMPLED = "not_sampled"
    """Do not keep the trace, unless another policy samples it."""
    DROPPED = "dropped"
    """Do not keep the trace, whatever any other policy decides."""
    ERROR = "error"
    """The policy could not decide (``combine`` also gives it to a policy that raised).

    Only that policy abstains: another policy may still sample or drop the trace. ``And``
    and ``Drop`` stop on it and pass it on, ``Not`` passes it through. As a trace's
    decision it means the sampler could not decide at all (a failure it logged), and the
    trace is not kept."""

    # Enum hashes a member by its name, in Python; members are singletons compared by
    # identity, so the identity hash is as good and costs no call. The sampler counts
    # several decisions per trace in dicts keyed by them.
    __hash__ = object.__hash__


__all__ = ["Decision"]
