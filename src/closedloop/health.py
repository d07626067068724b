"""Internal failure accounting: closedloop must never break the host app.

Every guarded hook reports here instead of raising. Failures are counted per site and
logged once per site (with the traceback), so a broken redactor in a hot loop does not
flood the app's logs, yet nothing fails silently: ``closedloop.stats()`` shows the counts.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("closedloop")

_lock = threading.RLock()  # re-entrant: a __del__ can count while this thread counts
_failures: Counter[str] = Counter()
_events: Counter[str] = Counter()


def record_failure(site: str, error: BaseException) -> None:
    """Count an internal failure at ``site``; log it the first time that site fails."""
    with _lock:
        _failures[site] += 1
        first = _failures[site] == 1
    if first:
        logger.warning(
            "closedloop: internal failure in %s (%s); the app's call is unaffected. "
            "Further failures here are only counted: see closedloop.stats().",
            site,
            type(error).__name__,
            exc_info=error,
        )


def count(event: str, amount: int = 1) -> None:
    """Count a noteworthy non-failure event (e.g. a stream closed by garbage collection)."""
    with _lock:
        _events[event] += amount


def stats() -> dict[str, object]:
    """Snapshot of internal failure and event counters, for health checks and tests."""
    with _lock:
        return {
            "internal_failures": sum(_failures.values()),
            "failures_by_site": dict(_failures),
            "events": dict(_events),
        }


def reset_stats() -> None:
    """Zero every counter (tests and long-running diagnostics)."""
    with _lock:
        _failures.clear()
        _events.clear()
