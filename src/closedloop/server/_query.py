"""The read-only query API under ``/api/``, for the web UI and the CLI (Contract 6)::

    app = Starlette(routes=[*query_routes(store, authorize=loopback_or_api_key), ...])

Every answer is computed in the store by the SQL files under ``queries/`` (values bound
as ``{name:Type}`` parameters, the database name filled from the store's settings), over
the views of docs/metrics.md, so the API shows exactly what SQL on the store shows. The
one exception is what only a running pipeline knows (``live``: serve's counts since it
started), which ``/api/sampling`` adds under ``since_start``.
Endpoints are plain functions: Starlette runs them in its thread pool, where a slow query
blocks no other request. Shapes and examples: docs/server.md, "Query API".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from closedloop.feedback import KINDS
from closedloop.sampling import Decision
from closedloop.server import _query_params as params
from closedloop.server._query_params import BadParameter, Cursor
from closedloop.server._responses import NEEDS_API_KEY, json_error
from closedloop.store import Store, StoreError
from closedloop.store._schema import render

if TYPE_CHECKING:
    from closedloop.server._pipeline import PipelineStats

logger = logging.getLogger("closedloop.server")

PAGE_DEFAULT: Final = 100
PAGE_MOST: Final = 500
"""Feedback rows per page: by default, and at most (a larger ``limit`` is cut to this)."""
FLOOR_DEPTH_FACTOR: Final = 4
"""Feedback candidates read per row wanted, and the factor of each deeper try."""
NOT_IN_STORE: Final = {
    "by_rule": "the store does not record which sampling rule kept a trace, so there are no "
    "counts by rule for a window; since_start.by_rule has what the running sampler decided",
}
"""Sampling figures ``/api/sampling`` cannot give from the store, and why (never guessed)."""
NOT_LIVE: Final = {
    "since_start": "this API was not given a running pipeline's counts (serve's API is), "
    "so it has no counts since a start",
}
"""Why ``/api/sampling`` has no ``since_start`` when it runs without a pipeline."""
_UNAUTHORIZED: Final = f"this API {NEEDS_API_KEY}"

Handler = Callable[[Request], Response]


_INCLUDE: Final = re.compile(r"\$\{include:([\w.]+)\}")
"""``${include:NAME.sql}`` in a query file: that file's text, for a part two routes share."""


def _sql(name: str, store: Store) -> str:
    return render(_text(name), store.settings)


def _text(name: str) -> str:
    text = resources.files("closedloop.server").joinpath("queries", name).read_text("utf-8")
    return _INCLUDE.sub(lambda included: _text(included[1]), text)


def query_routes(
    store: Store | Callable[[], Store],
    *,
    authorize: Callable[[Request], bool],
    live: Callable[[], PipelineStats] | None = None,
) -> list[BaseRoute]:
    """``GET /api/prompts``, ``/api/feedback``, ``/api/traces/{trace_id}`` and
    ``/api/sampling`` on ``store``; a request ``authorize`` refuses gets a 401. ``live``
    gives the running pipeline's counts (``Pipeline.stats``) for ``/api/sampling``.

    ``store`` may be a function that returns it (``Pipeline.store``), asked at each request:
    a server store that is down answers 503 until it is back, and a connection the pipeline
    replaced is never used again."""
    api = _QueryApi(store, live)
    routes: list[tuple[str, Handler]] = [
        ("/api/prompts", api.prompts),
        ("/api/feedback", api.feedback),
        ("/api/traces/{trace_id}", api.trace),
        ("/api/sampling", api.sampling),
    ]
    return [Route(path, _guarded(handler, authorize), methods=["GET"]) for path, handler in routes]


def _guarded(handler: Handler, authorize: Callable[[Request], bool]) -> Handler:
    """``handler`` behind the credentials check, with its 400s and the store's failures as
    JSON errors."""

    def endpoint(request: Request) -> Response:
        if not authorize(request):
            return json_error(401, _UNAUTHORIZED)
        try:
            return handler(request)
        except BadParameter as error:
            return json_error(400, str(error), parameter=error.parameter)
        except StoreError as error:
            logger.error("query API: the store failed on %s: %s", request.url.path, error)
            return json_error(503, "the store did not answer this query; the server log says why")

    return endpoint


class _QueryApi:
    """The endpoints' work, on one store, with each SQL file read once."""

    def __init__(
        self, store: Store | Callable[[], Store], live: Callable[[], PipelineStats] | None
    ) -> None:
        self._store = store
        self.live = live
        self._rendered: dict[str, str] = {}

    @property
    def store(self) -> Store:
        return self._store() if callable(self._store) else self._store

    def _sql(self, name: str) -> str:
        if name not in self._rendered:
            self._rendered[name] = _sql(name, self.store)
        return self._rendered[name]

    def prompts(self, request: Request) -> Response:
        values = params.single_values(request.query_params, ("prompt", "version", "from", "to"))
        low, high = params.day(values, "from"), params.day(values, "to")
        params.ordered(values, low, high)
        rows = self.store.query(
            self._sql("prompts.sql"),
            {
                "prompt": values.get("prompt"),
                "version": values.get("version"),
                "from_day": low.isoformat() if low else None,
                "to_day": high.isoformat() if high else None,
            },
        )
        return JSONResponse({"rows": rows})

    def feedback(self, request: Request) -> Response:
        allowed = ("prompt", "version", "name", "type", "from", "to", "limit", "cursor")
        values = params.single_values(request.query_params, allowed)
        kind = values.get("type")
        if kind is not None and kind not in KINDS:
            raise BadParameter("type", f"type={kind!r} is not a feedback kind; use one of {KINDS}.")
        low = params.instant_ns(values, "from", end=False)
        high = params.instant_ns(values, "to", end=True)
        params.ordered(values, low, high)
        size = params.limit(values, default=PAGE_DEFAULT, most=PAGE_MOST)
        cursor = Cursor.decode(values)
        rows = self._feedback_rows(
            {
                "prompt": values.get("prompt"),
                "version": values.get("version"),
                "name": values.get("name"),
                "type": kind,
                "from_ns": low,
                "to_ns": high,
                "cursor_ns": cursor.timestamp_ns if cursor else None,
                "cursor_trace": cursor.trace_id if cursor else "",
                "cursor_span": cursor.span_id if cursor else "",
                "limit": size + 1,  # one more than the page: is there a next one?
                "skip": cursor.skip if cursor else 0,
            }
        )
        page = rows[:size]
        following = _next_cursor(page, cursor) if len(rows) > size else None
        return JSONResponse(
            {"rows": [_feedback_row(row) for row in page], "limit": size, "next_cursor": following}
        )

    def _feedback_rows(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """The page's rows, read from the traces of the newest candidates only: rows at or
        after a floor the newest ``depth`` calls and signals set. Too few rows there (calls
        with feedback and unresolved signals are candidates without rows): a deeper floor,
        down to none, which reads every trace."""
        wanted = parameters["limit"] + parameters["skip"]
        depth = FLOOR_DEPTH_FACTOR * wanted
        while True:
            [floor] = self.store.query(
                self._sql("feedback_floor.sql"), {**parameters, "depth": depth}
            )
            rows = self.store.query(self._sql("feedback_page.sql"), {**parameters, **floor})
            if len(rows) == parameters["limit"] or floor["floor_ns"] is None:
                return rows
            depth *= FLOOR_DEPTH_FACTOR

    def trace(self, request: Request) -> Response:
        params.single_values(request.query_params, ())
        trace_id = params.trace_id(request.path_params["trace_id"])
        spans = self.store.query(self._sql("trace_spans.sql"), {"trace_id": trace_id})
        feedback = self.store.query(self._sql("trace_feedback.sql"), {"trace_id": trace_id})
        if not spans and not feedback:
            return json_error(
                404,
                f"no trace {trace_id} in the store: it was never received, or it is older than "
                f"the recent tier keeps ({self.store.settings.recent_ttl_days} days) and "
                "sampling dropped it",
            )
        return JSONResponse(
            {
                "trace_id": trace_id,
                "spans": [_span(row, trace_id) for row in spans],
                "feedback": [_trace_feedback(row) for row in feedback],
            }
        )

    def sampling(self, request: Request) -> Response:
        values = params.single_values(request.query_params, ("from", "to"))
        low = params.instant_ns(values, "from", end=False)
        high = params.instant_ns(values, "to", end=True)
        params.ordered(values, low, high)
        [counts] = self.store.query(self._sql("sampling.sql"), {"from_ns": low, "to_ns": high})
        since_start = None if self.live is None else _since_start(self.live())
        return JSONResponse(
            {
                "from": None if low is None else params.iso_ns(low),
                "to": None if high is None else params.iso_ns(high),
                "recent_tier_days": self.store.settings.recent_ttl_days,
                "spans": _tally(counts, "spans"),
                "traces": _tally(counts, "traces"),
                "by_rule": None,
                "since_start": since_start,
                "not_available": {**NOT_IN_STORE, **(NOT_LIVE if since_start is None else {})},
            }
        )


def _tally(counts: dict[str, int], unit: str) -> dict[str, int]:
    received, kept = counts[f"received_{unit}"], counts[f"kept_{unit}"]
    return {
        "received": received,
        "kept": kept,
        "dropped": received - kept,
        "rescued": counts[f"rescued_{unit}"],
    }


def _since_start(stats: PipelineStats) -> dict[str, Any]:
    """What the running pipeline counted since it started (nothing the store records)."""
    return {
        "spans": {
            "accepted": stats.spans_accepted,
            "refused": stats.spans_refused,
            "kept": stats.spans_kept,
            "spooled": stats.exporter.spool_spans,
        },
        "traces_decided": {
            decision.value: stats.sampler.traces_decided.get(decision, 0) for decision in Decision
        },
        "by_rule": stats.by_rule(),
        "rescued": {
            "runs": stats.rescue_runs,
            "failures": stats.rescue_failures,
            "traces": stats.rescued_traces,
            "spans": stats.rescued_spans,
        },
    }


def _next_cursor(page: list[dict[str, Any]], cursor: Cursor | None) -> str:
    """The cursor after ``page``'s last row, counting the rows that share its key."""
    last = page[-1]
    key = (last["timestamp_ns"], last["trace_id"], last["span_id"])
    ties = sum(1 for row in page if (row["timestamp_ns"], row["trace_id"], row["span_id"]) == key)
    if cursor is not None and (cursor.timestamp_ns, cursor.trace_id, cursor.span_id) == key:
        ties += cursor.skip  # the tie group started on an earlier page
    return Cursor(*key, skip=ties).encode()


def _clickhouse_iso(text: str) -> str:
    """ClickHouse's UTC ``2025-06-01 12:00:00.123456789`` as ISO 8601."""
    return text.replace(" ", "T", 1) + "Z"


def _feedback_row(row: dict[str, Any]) -> dict[str, Any]:
    """A feedback view row as JSON: its JSON columns as objects, times in ISO 8601."""
    metadata = json.loads(row["metadata"])
    metadata["call_timestamp"] = _clickhouse_iso(metadata["call_timestamp"])
    value = row["feedback_value"]
    return {
        "conversation_id": row["conversation_id"],
        "turn_id": row["turn_id"],
        "request_id": row["request_id"],
        "input": row["input"],
        "output": row["output"],
        "prompt_version": row["prompt_version"],
        "model": row["model"],
        "feedback_type": row["feedback_type"],
        "feedback_value": None if value is None else json.loads(value),
        "timestamp": params.iso_ns(row["timestamp_ns"]),
        "user_id_hash": row["user_id_hash"],
        "metadata": metadata,
    }


def _spelling(stored: str, prefix: str) -> str:
    """Kind and status as one spelling, whichever writer stored them (``Client`` by
    closedloop and newer collectors, ``SPAN_KIND_CLIENT`` by older ones): ``client``."""
    return stored.removeprefix(prefix).lower()


def _span(row: dict[str, Any], trace_id: str) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"] or None,
        "name": row["name"],
        "kind": _spelling(row["kind"], "SPAN_KIND_"),
        "service_name": row["service_name"],
        "start": params.iso_ns(row["start_ns"]),
        "end": params.iso_ns(row["start_ns"] + row["duration_ns"]),
        "duration_ns": row["duration_ns"],
        "status": {
            "code": _spelling(row["status_code"], "STATUS_CODE_"),
            "message": row["status_message"],
        },
        "attributes": row["attributes"],
        "resource_attributes": row["resource_attributes"],
        "scope": {"name": row["scope_name"], "version": row["scope_version"]},
        "trace_state": row["trace_state"],
        "events": [
            {"timestamp": params.iso_ns(ns), "name": name, "attributes": attributes}
            for ns, name, attributes in zip(
                row["event_ns"], row["event_names"], row["event_attributes"], strict=True
            )
        ],
        "links": [
            {"trace_id": trace, "span_id": span, "trace_state": state, "attributes": attributes}
            for trace, span, state, attributes in zip(
                row["link_trace_ids"],
                row["link_span_ids"],
                row["link_trace_states"],
                row["link_attributes"],
                strict=True,
            )
        ],
        "tier": row["tier"],
    }


def _trace_feedback(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "feedback_span_id": row["feedback_span_id"],
        "target_span_id": row["target_span_id"] or None,
        "call_span_id": row["call_span_id"] or None,
        "timestamp": params.iso_ns(row["timestamp_ns"]),
        "kind": row["kind"],
        "name": row["name"],
        "value": row["value"],
        "label": row["label"],
        "explanation": row["explanation"],
        "source": row["source"],
    }
