"""``POST /api/rescue`` and ``POST /api/sql``: what CLI commands ask serve for while it
holds the chDB store (chDB lets one process open it), and ``GET /api/instance``, the token
they check first (``closedloop._serve_discovery``)::

    app = Starlette(routes=[*admin_routes(pipeline, authorize=loopback_or_api_key), ...])

The same credentials as the query API. Both answer with what the CLI prints when it opens
the store itself: ``closedloop.store.rescue`` and ``readonly_sql`` on serve's store. Every
request must declare a JSON body (``Content-Type: application/json``), even an empty one:
a browser cannot send that to another origin without a CORS preflight that serve never
grants, so a web page cannot make a user's browser run them on a serve bound to loopback.

They run on worker threads of their own, ``ADMIN_THREADS`` at most, never on the pool
that ingest, ``/healthz`` and the query API share: a long statement cannot make a span
wait. More at once get 429 with ``Retry-After``.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from closedloop._serve_discovery import INSTANCE, INSTANCE_PATH
from closedloop._since import SinceError, since_moment
from closedloop.server._bodies import BodyTooLargeError, bounded_body
from closedloop.server._pipeline import Pipeline
from closedloop.server._responses import NEEDS_API_KEY, json_error
from closedloop.store import RescueResult, StoreError
from closedloop.store._readonly_sql import SqlRefused, readonly_sql

logger = logging.getLogger("closedloop.server")

MAX_BODY_BYTES: Final = 1024 * 1024
"""A statement, with room to spare; more is a 413."""
ADMIN_THREADS: Final = 2
"""Statements and rescues at once: a user's second query runs beside the first."""
BUSY_RETRY_AFTER_S: Final = 1

Handler = Callable[[Request], Awaitable[Response]]
_T = TypeVar("_T")


class _BadRequest(Exception):
    """A request the endpoint answers with ``status`` and ``message`` (naming ``field``)."""

    def __init__(
        self, status: int, message: str, field: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s


def admin_routes(pipeline: Pipeline, *, authorize: Callable[[Request], bool]) -> list[BaseRoute]:
    """``POST /api/rescue`` and ``POST /api/sql`` on the pipeline's store (a request
    ``authorize`` refuses gets a 401), and ``GET /api/instance``, open to all: it tells
    nothing but the token ``serve.json`` holds."""
    api = _AdminApi(pipeline)
    return [
        Route("/api/rescue", _guarded(api.rescue, authorize), methods=["POST"]),
        Route("/api/sql", _guarded(api.sql, authorize), methods=["POST"]),
        Route(INSTANCE_PATH, _instance, methods=["GET"]),
    ]


async def _instance(request: Request) -> Response:
    return JSONResponse({"instance": INSTANCE})


def _guarded(handler: Handler, authorize: Callable[[Request], bool]) -> Handler:
    """``handler`` behind the credentials check, its refusals and the store's failures as
    JSON errors."""

    async def endpoint(request: Request) -> Response:
        if not authorize(request):
            return json_error(401, f"this API {NEEDS_API_KEY}")
        try:
            return await handler(request)
        except _BadRequest as error:
            extra = {"field": error.field} if error.field else {}
            response = json_error(error.status, error.message, **extra)
            if error.retry_after_s is not None:
                response.headers["Retry-After"] = str(error.retry_after_s)
            return response
        except SqlRefused as error:
            return json_error(400, str(error))
        except StoreError as error:
            logger.error("%s: the store failed: %s", request.url.path, error)
            return json_error(503, f"the store did not answer: {error}")

    return endpoint


class _AdminApi:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._threads = CapacityLimiter(ADMIN_THREADS)
        self._running = 0  # only touched on the event loop

    async def _on_admin_thread(self, work: Callable[[], _T]) -> _T:
        """``work`` on one of the admin threads; 429 when all of them are taken."""
        if self._running >= ADMIN_THREADS:
            raise _BadRequest(
                429,
                f"serve is running {self._running} SQL statements or rescues already; retry in "
                f"{BUSY_RETRY_AFTER_S} s",
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        self._running += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._threads)
        finally:
            self._running -= 1

    async def rescue(self, request: Request) -> Response:
        """``since`` in the body or the query, as ``closedloop rescue --since`` takes it."""
        body = await _json_body(request, required=False)
        given = [value for value in (body.get("since"), request.query_params.get("since")) if value]
        if len(given) > 1:
            raise _BadRequest(400, "since: give it in the body or the query, not both", "since")
        since = _since(given[0]) if given else None
        result = await self._on_admin_thread(lambda: self._rescue(since))
        return JSONResponse({"traces": result.traces, "spans": result.spans})

    def _rescue(self, since: datetime.datetime | None) -> RescueResult:
        return self.pipeline.rescue(since)

    async def sql(self, request: Request) -> Response:
        """``{"query": "SELECT ..."}`` -> ``{"columns": [{"name", "type"}], "rows": [[...]]}``."""
        body = await _json_body(request, required=True)
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise _BadRequest(400, "query: send the statement as a non-empty string", "query")
        answer = await self._on_admin_thread(lambda: self._sql(query))
        return Response(answer, media_type="application/json")

    def _sql(self, query: str) -> bytes:
        """The answer as JSON, encoded here: a large one must not hold the event loop."""
        result = readonly_sql(self.pipeline.store(), query)
        return json.dumps(result.as_json(), ensure_ascii=False).encode()


def _since(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise _BadRequest(400, "since: an age like 3d/12h/30m or an ISO timestamp", "since")
    try:
        return since_moment(value)
    except SinceError as error:
        raise _BadRequest(400, str(error), "since") from None


async def _json_body(request: Request, *, required: bool) -> dict[str, Any]:
    """The body's JSON object, read no further than ``MAX_BODY_BYTES``; ``{}`` for an
    empty body when it is not ``required``. Declared JSON in every case, empty or not."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise _BadRequest(415, "send the body as JSON, with Content-Type: application/json")
    try:
        raw = await bounded_body(request, MAX_BODY_BYTES)
    except BodyTooLargeError as error:
        raise _BadRequest(413, str(error)) from None
    if not raw.strip() and not required:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise _BadRequest(400, f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, "the body must be a JSON object")
    return body
