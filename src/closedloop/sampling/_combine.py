"""How the policies' decisions become the trace's: the collector's ``makeDecision``
(``processor.go``), for the decisions closedloop's policies return.

Drop policies first: any DROPPED drops the trace, whatever the order. Then the others in
order: a DROPPED from any of them drops the trace too, and ends the evaluation; else any
SAMPLED keeps it, and with ``sample_on_first_match`` the first one ends the evaluation (a
DROPPED after it is not seen). Otherwise NOT_SAMPLED.

A policy that raises decides ERROR: it abstains and the others decide, as the collector
logs a policy's error and goes on. The failure is logged once per policy name
(``closedloop.stats()`` counts each one) and reported in ``CombinedDecision.errors``.

Every evaluation, in order, is in ``CombinedDecision.evaluations``: the policies this
stopped before were not evaluated, as in the collector, whose per-policy count
(``count_traces_sampled``) is of the evaluations that did not fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from closedloop import _health as health
from closedloop.sampling._decision import Decision
from closedloop.sampling._policies import Drop, Policy
from closedloop.sampling._trace import BufferedTrace


@dataclass(frozen=True)
class CombinedDecision:
    """The trace's decision, the policy that made it, and the policies that could not."""

    decision: Decision
    policy: str | None
    """The first policy that dropped or sampled the trace; None for NOT_SAMPLED."""
    errors: tuple[str, ...] = ()
    """The policies whose evaluation decided ERROR (raised, or returned it), in order."""
    evaluations: tuple[tuple[str, Decision], ...] = field(default=(), compare=False)
    """Each policy evaluated, in order, with its own decision (ERROR included). Not part
    of equality: two combinations are equal when they decide alike for the same reason."""


def _evaluate(
    policy: Policy, trace: BufferedTrace, evaluations: list[tuple[str, Decision]]
) -> Decision:
    try:
        decision = policy.evaluate(trace)
    except Exception as error:
        health.record_failure(f"sampling.policy.{policy.name}", error)
        decision = Decision.ERROR
    else:
        if not isinstance(decision, Decision):
            wrong = TypeError(f"policy {policy.name!r} returned {decision!r}, not a Decision")
            health.record_failure(f"sampling.policy.{policy.name}", wrong)
            decision = Decision.ERROR
    evaluations.append((policy.name, decision))
    return decision


def combine(
    policies: Sequence[Policy], trace: BufferedTrace, first_match: bool
) -> CombinedDecision:
    """The trace's decision from every policy's (``first_match``: sample_on_first_match)."""
    evaluations: list[tuple[str, Decision]] = []
    for policy in policies:
        if isinstance(policy, Drop) and _evaluate(policy, trace, evaluations) is Decision.DROPPED:
            return _combined(Decision.DROPPED, policy.name, evaluations)
    sampled: str | None = None
    for policy in policies:
        if isinstance(policy, Drop):
            continue
        decision = _evaluate(policy, trace, evaluations)
        if decision is Decision.DROPPED:
            return _combined(Decision.DROPPED, policy.name, evaluations)
        if decision is Decision.SAMPLED and sampled is None:
            sampled = policy.name
            if first_match:
                break
    if sampled is None:
        return _combined(Decision.NOT_SAMPLED, None, evaluations)
    return _combined(Decision.SAMPLED, sampled, evaluations)


def _combined(
    decision: Decision, policy: str | None, evaluations: list[tuple[str, Decision]]
) -> CombinedDecision:
    errors = tuple(name for name, each in evaluations if each is Decision.ERROR)
    return CombinedDecision(decision, policy, errors, tuple(evaluations))


__all__ = ["CombinedDecision", "combine"]
