"""Late-feedback rescue: bring back traces that sampling dropped before their feedback came.

Run it on a schedule (``closedloop rescue`` from cron; on a ClickHouse server, or a
refreshable materialized view, see docs/sampling.md). Only the recent tier's retention
bounds how late feedback may be.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from closedloop.store import _instruments as instruments
from closedloop.store._base import Store
from closedloop.store._schema import query


@dataclass(frozen=True)
class RescueResult:
    """What one rescue copied into ``otel_traces`` (the counts its metrics add too)."""

    traces: int
    spans: int


def rescue(store: Store, since: datetime.datetime | None = None) -> RescueResult:
    """Copy the missing spans of traces whose feedback arrived since ``since`` (default: the
    recent tier's whole retention) from ``otel_traces_recent`` into ``otel_traces``.

    Arrived: reached the recent tier (``feedback_arrivals``), whatever time the feedback
    names — feedback recorded now with ``timestamp=`` two hours ago is in a one-hour window.
    """
    if since is None:
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            days=store.settings.recent_ttl_days
        )
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware, e.g. datetime.now(timezone.utc).")
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    parameters = {"since_ns": (since - epoch) // datetime.timedelta(microseconds=1) * 1000}
    found = store.query(query("rescue_candidates.sql", store.settings), parameters)[0]
    if found["spans"]:
        store.execute(query("rescue.sql", store.settings), parameters)
        instruments.count_rescued(found["traces"], found["spans"])
    return RescueResult(traces=found["traces"], spans=found["spans"])
