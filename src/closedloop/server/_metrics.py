"""serve's Prometheus metrics at ``GET /metrics``, on a registry of the app's own.

The counts already live in the pipeline and the receiver (``/healthz`` shows them), so a
custom collector reads them at scrape time instead of counting each event a second time:
a scrape and ``/healthz`` read the same numbers. Only request latency is measured here,
by a pure ASGI middleware (``BaseHTTPMiddleware`` would buffer streamed bodies), labelled
by the route's template, never the raw path, so a trace id does not become a time series.
The registry is the app's, never ``prometheus_client``'s global one: two apps in a process
(tests, a host mounting serve's app) would otherwise clash, or report each other's counts.
Every metric, with its type and labels: docs/server.md, "Metrics".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final, Protocol, get_args

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closedloop.sampling import Decision
from closedloop.sampling._counts import LateSpanOutcome
from closedloop.server._pipeline import Pipeline, PipelineStats
from closedloop.server._responses import NEEDS_API_KEY

METRICS_PATH: Final = "/metrics"
DURATION_BUCKETS_S: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""From a ``/healthz`` on loopback (under a millisecond) to a large batch waiting for an
fsync or a slow query; 30 s is the longest shutdown lets a request run."""
UNMATCHED_ROUTE: Final = "unmatched"
"""The ``route`` of a request no route answers (its 404): one series, whatever the path."""
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OTHER_METHOD: Final = "other"
_UNAUTHORIZED: Final = f"/metrics {NEEDS_API_KEY}\n"


class ReceiverCounts(Protocol):
    """What the OTLP receiver counts (``_Receiver`` in ``_app``)."""

    @property
    def in_flight(self) -> int: ...

    def response_counts(self) -> dict[str, int]: ...


class ServeMetrics:
    """One app's registry: the pipeline's and receiver's counts, read when scraped, and
    the request-duration histogram the middleware fills."""

    def __init__(self, pipeline: Pipeline, receiver: ReceiverCounts) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_ServeCollector(pipeline.stats, receiver))
        ProcessCollector(registry=self.registry)
        self.request_duration = Histogram(
            "closedloop_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template, "
            "method and status code.",
            labelnames=("route", "method", "status"),
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )

    def route(self, authorize: Callable[[Request], bool]) -> Route:
        """``GET /metrics`` in the format the scraper's ``Accept`` asks for (the Prometheus
        text format by default, OpenMetrics on request); ``authorize`` as the query API."""

        def scrape(request: Request) -> Response:
            # A plain function: Starlette runs it on a worker thread, so the exporter's
            # lock (held through a spool fsync) never stalls the event loop.
            if not authorize(request):
                return PlainTextResponse(_UNAUTHORIZED, 401, headers={"WWW-Authenticate": "Bearer"})
            encode, content_type = choose_encoder(request.headers.get("accept", ""))
            return Response(encode(self.registry), headers={"Content-Type": content_type})

        return Route(METRICS_PATH, scrape, methods=["GET"])

    def middleware(self, routes: Sequence[BaseRoute]) -> Middleware:
        """The request-duration middleware for an app of ``routes``."""
        return Middleware(RequestDurations, histogram=self.request_duration, routes=routes)


class RequestDurations:
    """Pure ASGI middleware: observes every HTTP request's duration into ``histogram``,
    labelled by the template of the route of ``routes`` that answers it."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self._histogram = histogram
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_template(self._routes, scope)
        method = scope["method"] if scope["method"] in _METHODS else _OTHER_METHOD
        status = 500  # what the server answers when the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._histogram.labels(route, method, str(status)).observe(
                time.perf_counter() - started
            )


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that handles ``scope``, as the router picks it (the
    first full match, else the first partial one: a 405); ``unmatched`` for none."""
    partial: BaseRoute | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return _template(route)
        if match is Match.PARTIAL and partial is None:
            partial = route
    return _template(partial) if partial is not None else UNMATCHED_ROUTE


def _template(route: BaseRoute) -> str:
    path_format = getattr(route, "path_format", None)
    return path_format if isinstance(path_format, str) else UNMATCHED_ROUTE


class _ServeCollector:
    """The pipeline's and receiver's counts as Prometheus metrics, read at each scrape."""

    def __init__(self, stats: Callable[[], PipelineStats], receiver: ReceiverCounts) -> None:
        self._stats = stats
        self._receiver = receiver

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        yield from _pipeline_metrics(stats)
        yield from _sampler_metrics(stats)
        yield from _store_metrics(stats)
        if stats.forward:
            yield _labelled_counter(
                "closedloop_forward_spans",
                "Kept spans sent on to --forward-otlp, by outcome: sent, failed (the backend "
                "refused them or did not answer), dropped (its queue was full).",
                "outcome",
                stats.forward,
            )
        yield GaugeMetricFamily(
            "closedloop_otlp_requests_in_flight",
            "POST /v1/traces requests being read and decoded now (bounded by "
            "--max-concurrent-requests).",
            value=self._receiver.in_flight,
        )
        yield _labelled_counter(
            "closedloop_otlp_responses",
            "POST /v1/traces answers by HTTP status code (499: the client left first).",
            "status",
            self._receiver.response_counts(),
        )


def _pipeline_metrics(stats: PipelineStats) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "closedloop_spans_accepted",
        "Spans received and acknowledged (written to the recent tier or fsynced in the "
        "spool), from /v1/traces and /v1/feedback.",
        value=stats.spans_accepted,
    )
    yield CounterMetricFamily(
        "closedloop_spans_refused",
        "Spans of requests refused with 503 because the memory queue and spool were full.",
        value=stats.spans_refused,
    )
    yield CounterMetricFamily(
        "closedloop_spans_kept",
        "Spans of traces the tail sampler kept (written to otel_traces).",
        value=stats.spans_kept,
    )
    yield CounterMetricFamily(
        "closedloop_rescue_runs", "Late-feedback rescues run.", value=stats.rescue_runs
    )
    yield CounterMetricFamily(
        "closedloop_rescue_failures",
        "Late-feedback rescues that failed (the store did not answer).",
        value=stats.rescue_failures,
    )
    yield CounterMetricFamily(
        "closedloop_rescue_traces",
        "Traces the rescue copied into otel_traces because feedback came after sampling "
        "dropped them.",
        value=stats.rescued_traces,
    )
    yield CounterMetricFamily(
        "closedloop_rescue_spans", "Spans of the rescued traces.", value=stats.rescued_spans
    )


def _sampler_metrics(stats: PipelineStats) -> Iterator[Metric]:
    counts = stats.sampler
    yield CounterMetricFamily(
        "closedloop_sampler_traces_received",
        "Traces the tail sampler started buffering.",
        value=counts.traces_received,
    )
    yield _labelled_counter(
        "closedloop_sampler_traces_decided",
        "Traces decided, by decision: sampled is kept; not_sampled, dropped and error are not.",
        "decision",
        {decision.value: counts.traces_decided[decision] for decision in Decision},
    )
    yield _labelled_counter(
        "closedloop_sampler_late_spans",
        "Spans that arrived after their trace was decided, by outcome: forwarded (the "
        "trace was kept) or discarded.",
        "outcome",
        {outcome: counts.late_spans[outcome] for outcome in get_args(LateSpanOutcome)},
    )
    yield CounterMetricFamily(
        "closedloop_sampler_traces_evicted_undecided",
        "Traces evicted before their decision because num_traces was reached.",
        value=counts.traces_evicted_undecided,
    )
    yield _labelled_counter(
        "closedloop_sampler_policy_errors",
        "Policy evaluations that could not decide, by policy name.",
        "policy",
        counts.policy_errors,
    )
    by_policy = CounterMetricFamily(
        "closedloop_sampler_policy_decisions",
        "Traces each top-level policy evaluated, by its own decision (the collector's "
        "count_traces_sampled).",
        labels=["policy", "decision"],
    )
    for (policy, decision), count in sorted(
        counts.policy_decisions.items(), key=lambda item: (item[0][0], item[0][1].value)
    ):
        by_policy.add_metric([policy, decision.value], count)
    yield by_policy


def _store_metrics(stats: PipelineStats) -> Iterator[Metric]:
    exporter = stats.exporter
    yield _labelled_counter(
        "closedloop_store_spans",
        "Span rows the exporter handled, one per span and table (a kept span is a row in "
        "both tiers), by outcome: exported (inserted), spooled (to disk on the way), adopted "
        "(from an earlier run's spool), rejected (refused by the store, set aside as dead "
        "letters), dropped (lost).",
        "outcome",
        {
            "exported": exporter.exported_spans,
            "spooled": exporter.spooled_spans_total,
            "adopted": exporter.adopted_spans,
            "rejected": exporter.rejected_spans,
            "dropped": exporter.dropped_spans,
        },
    )
    yield CounterMetricFamily(
        "closedloop_store_insert_failures",
        "Failed insert attempts (retried with backoff; the rows wait in memory or the spool).",
        value=exporter.failed_inserts,
    )
    yield GaugeMetricFamily(
        "closedloop_store_queued_spans",
        "Span rows held in memory for the store now (bounded by --max-queue-spans).",
        value=exporter.queued_spans,
    )
    yield GaugeMetricFamily(
        "closedloop_store_spool_spans",
        "Span rows in the on-disk spool now, waiting for the store.",
        value=exporter.spool_spans,
    )
    yield GaugeMetricFamily(
        "closedloop_store_spool_bytes",
        "Size of the on-disk spool now (bounded by --max-spool-bytes).",
        value=exporter.spool_bytes,
        unit="bytes",
    )


def _labelled_counter(
    name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family
