"""The web UI at ``/``: six pages over the query API, plus the API routes they add.

    routes = ui_routes(store, registry, authorize=..., live=pipeline.stats)

Pages are rendered on the server from the API's own answers (:mod:`._ui_calls`), with
charts as inline SVG and one stylesheet shipped in the package: the UI works offline,
runs no script, and its numbers are the API's. Pages follow the API's credentials rule:
open while serve listens on loopback only, an API key beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from closedloop.server import _ui_metric_pages as metric_pages
from closedloop.server import _ui_record_pages as record_pages
from closedloop.server._query import Handler, _guarded, _QueryApi
from closedloop.server._query_params import BadParameter, single_values
from closedloop.server._registry_view import RegistryView
from closedloop.server._responses import NEEDS_API_KEY
from closedloop.server._ui_api import UiApi
from closedloop.server._ui_html import CONTENT_SECURITY_POLICY, error_box, page
from closedloop.store import Store

if TYPE_CHECKING:
    from closedloop.server._pipeline import PipelineStats

Page = Callable[[dict[str, Handler], dict[str, str]], str]
_PAGES: Final[tuple[tuple[str, str, Page, tuple[str, ...]], ...]] = (
    ("/", "Overview", metric_pages.overview, ("prompt", "from", "to")),
    ("/prompts", "Prompts", metric_pages.prompts, ("prompt", "from", "to", "sort", "order")),
    (
        "/compare",
        "Compare",
        metric_pages.compare,
        ("prompt", "baseline", "candidate", "unit", "from", "to"),
    ),
    (
        "/feedback",
        "Feedback",
        record_pages.feedback,
        ("prompt", "version", "type", "name", "day", "cursor"),
    ),
    ("/sampling", "Sampling", record_pages.sampling, ("from", "to", "bucket")),
)
STYLESHEET: Final = "/static/closedloop.css"


def ui_routes(
    store: Store | Callable[[], Store],
    registry: RegistryView,
    *,
    authorize: Callable[[Request], bool],
    live: Callable[[], PipelineStats] | None = None,
) -> list[BaseRoute]:
    """The API routes the pages add (``/api/overview`` ...), the pages and the stylesheet."""
    extra = UiApi(store, registry)
    query = _QueryApi(store, live)
    handlers: dict[str, Handler] = {
        "/api/feedback": query.feedback,
        "/api/traces/{trace_id}": query.trace,
        "/api/sampling": query.sampling,
        **dict(extra.handlers()),
    }
    # The page has checked the caller already; its own API calls go through the same
    # error handling as a caller's (400s and store failures as JSON errors).
    inside = {path: _guarded(handler, lambda request: True) for path, handler in handlers.items()}
    routes: list[BaseRoute] = [
        Route(path, _guarded(handler, authorize), methods=["GET"])
        for path, handler in extra.handlers()
    ]
    for path, title, render, allowed in _PAGES:
        routes.append(
            Route(
                path, _page(path, title, render, allowed=allowed, api=inside, authorize=authorize)
            )
        )
    routes.append(Route("/trace/{trace_id}", _trace_page(inside, authorize)))
    routes.append(Route(STYLESHEET, _stylesheet))
    return routes


def _html(status: int, path: str, title: str, body: str) -> Response:
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"}
    return HTMLResponse(page(path, title, body), status_code=status, headers=headers)


def _refused(path: str, title: str) -> Response:
    return _html(401, path, title, error_box(f"This page {NEEDS_API_KEY}."))


def _page(
    path: str,
    title: str,
    render: Page,
    *,
    allowed: tuple[str, ...],
    api: dict[str, Handler],
    authorize: Callable[[Request], bool],
) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        if not authorize(request):
            return _refused(path, title)
        try:
            values = single_values(request.query_params, allowed)
        except BadParameter as error:
            return _html(400, path, title, error_box(str(error)))
        return _html(200, path, title, render(api, values))

    return endpoint


def _trace_page(
    api: dict[str, Handler], authorize: Callable[[Request], bool]
) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        if not authorize(request):
            return _refused("/trace", "Trace")
        status, body = record_pages.trace(api, request.path_params["trace_id"])
        return _html(status, "/trace", "Trace", body)

    return endpoint


def _stylesheet(request: Request) -> Response:
    text = resources.files("closedloop.server").joinpath("ui", "closedloop.css").read_text("utf-8")
    return Response(text, media_type="text/css", headers={"Cache-Control": "max-age=300"})
