"""Internal failure and event counters: closedloop must never break the host app.

Every guarded hook reports here instead of raising. Failures are counted per site and
logged once per site (with the traceback), so a broken redactor in a hot loop does not
flood the app's logs, yet nothing fails silently: ``closedloop.stats()`` shows the counts,
and the same counts are published as OTel counters (``closedloop.internal.failures`` by
``site``, ``closedloop.events`` by ``event``) so any metrics backend shows them too.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TypedDict

from opentelemetry.metrics import Meter

from closedloop import _telemetry as telemetry

logger = logging.getLogger("closedloop")

FAILURES_METRIC = "closedloop.internal.failures"
EVENTS_METRIC = "closedloop.events"


class Stats(TypedDict):
    """What ``closedloop.stats()`` returns."""

    internal_failures: int
    failures_by_site: dict[str, int]
    events: dict[str, int]


class Health:
    """One process's counters; ``closedloop._runtime`` holds the one in use."""

    def __init__(self, meter: Meter | None = None) -> None:
        published = meter if meter is not None else telemetry.meter()
        self._failure_counter = published.create_counter(
            FAILURES_METRIC,
            unit="{failure}",
            description="closedloop's own failures, each absorbed so the app's call went on.",
        )
        self._event_counter = published.create_counter(
            EVENTS_METRIC,
            unit="{event}",
            description="Noteworthy closedloop events that are not failures.",
        )
        # Re-entrant: a finalizer can count while this thread is counting.
        self._lock = threading.RLock()
        self._failures: Counter[str] = Counter()
        self._events: Counter[str] = Counter()

    def record_failure(self, site: str, error: BaseException) -> None:
        """Count an internal failure at ``site``; log it the first time that site fails."""
        with self._lock:
            self._failures[site] += 1
            first = self._failures[site] == 1
        self._failure_counter.add(1, {"site": site})
        if first:
            logger.warning(
                "closedloop: internal failure in %s (%s); the app's call is unaffected. "
                "Further failures here are only counted: see closedloop.stats().",
                site,
                type(error).__name__,
                exc_info=error,
            )

    def count(self, event: str, amount: int = 1) -> None:
        """Count a noteworthy non-failure event (e.g. a stream closed by garbage collection)."""
        with self._lock:
            self._events[event] += amount
        self._event_counter.add(amount, {"event": event})

    def stats(self) -> Stats:
        """Snapshot of the counters, for health checks and tests."""
        with self._lock:
            return Stats(
                internal_failures=sum(self._failures.values()),
                failures_by_site=dict(self._failures),
                events=dict(self._events),
            )

    def reset(self) -> None:
        """Zero the snapshot counters (the OTel counters are cumulative and stay)."""
        with self._lock:
            self._failures.clear()
            self._events.clear()
