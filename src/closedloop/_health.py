"""Where every guarded part of closedloop reports what went wrong instead of raising.

Thin functions over the runtime's :class:`~closedloop._health_counters.Health`, so a
caller anywhere (a hook, the store's exporter, the sampler) reports without holding a
reference to the runtime.
"""

from __future__ import annotations

from closedloop._health_counters import Stats
from closedloop._runtime import current

__all__ = ["Stats", "count", "record_failure", "reset_stats", "stats"]


def record_failure(site: str, error: BaseException) -> None:
    """Count an internal failure at ``site``; logged the first time that site fails."""
    current().health.record_failure(site, error)


def count(event: str, amount: int = 1) -> None:
    """Count a noteworthy non-failure event (e.g. a stream closed by garbage collection)."""
    current().health.count(event, amount)


def stats() -> Stats:
    """Snapshot of internal failure and event counters, for health checks and tests."""
    return current().health.stats()


def reset_stats() -> None:
    """Zero every counter of the snapshot (tests and long-running diagnostics)."""
    current().health.reset()
