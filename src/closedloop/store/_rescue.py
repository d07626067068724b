"""Late-feedback rescue: bring back traces that sampling dropped before their feedback came.

Run it on a schedule (``closedloop rescue`` from cron; on a ClickHouse server, or a
refreshable materialized view, see docs/sampling.md). Only the recent tier's retention
bounds how late feedback may be. Each rescued span is also recorded in ``rescued_spans``
(migration 012), so the store can say what rescues brought back, whoever ran them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from closedloop.store import _instruments as instruments
from closedloop.store._base import Store
from closedloop.store._schema import query

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class RescueResult:
    """What one rescue copied into ``otel_traces`` (the counts its metrics add too)."""

    traces: int
    spans: int


def rescue(
    store: Store,
    since: datetime.datetime | None = None,
    *,
    until: datetime.datetime | None = None,
    skip: Callable[[str], bool] | None = None,
) -> RescueResult:
    """Copy the missing spans of traces whose feedback arrived in ``[since, until)`` (default:
    the recent tier's whole retention, until now) from ``otel_traces_recent`` into
    ``otel_traces``, and record each copied span in ``rescued_spans``.

    Arrived: reached the recent tier (``feedback_arrivals``), whatever time the feedback
    names — feedback recorded now with ``timestamp=`` two hours ago is in a one-hour window.
    Windows that follow each other (one's ``until`` the next one's ``since``) cover every
    arrival once. ``until`` is for a sampler in the same pipeline: feedback that arrived
    within its ``decision_wait`` may belong to a trace still waiting for its decision, which
    the sampler would write after the rescue copied it. ``skip`` (a trace id in hex ->
    whether to leave it) is for the same sampler: a trace it holds or kept is its to write,
    even when its rows still wait in a spool, where the rescue could not see them.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    if since is None:
        since = now - datetime.timedelta(days=store.settings.recent_ttl_days)
    if until is None:
        until = now
    for name, moment in (("since", since), ("until", until)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(timezone.utc).")
    parameters: dict[str, int | list[str]] = {
        "since_ns": _ns(since),
        "until_ns": _ns(until),
        "skip": [],
    }
    if skip is not None:
        candidates = store.query(query("rescue_candidate_traces.sql", store.settings), parameters)
        parameters["skip"] = [row["trace_id"] for row in candidates if skip(row["trace_id"])]
    found = store.query(query("rescue_candidates.sql", store.settings), parameters)[0]
    if found["spans"]:
        store.execute(query("rescue_record.sql", store.settings), parameters)
        store.execute(query("rescue.sql", store.settings), parameters)
        instruments.count_rescued(found["traces"], found["spans"])
    return RescueResult(traces=found["traces"], spans=found["spans"])


def _ns(moment: datetime.datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond ``datetime`` holds."""
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1) * 1000
