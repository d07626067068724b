"""serve's ASGI app: ``POST /v1/traces`` as the OTLP/HTTP spec says, ``GET /healthz`` and
``GET /metrics``.

Starlette, not FastAPI: the receiver needs raw, streamed request bodies (to stop reading at
the size limit) and protobuf in and out, and nothing of pydantic models or OpenAPI schemas.

Each refusal happens as early as it can: the media type and the concurrency bound before
the body is read, the size as it is read (``Content-Length`` first), everything else after
decoding. Refusals are ``google.rpc.Status`` messages in the request's own encoding (the
spec's protobuf when the type is unknown); a full pipeline is a 503 with ``Retry-After``
and the collector's ``RetryInfo``, which OTLP exporters honour.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Final

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.duration_pb2 import Duration  # type: ignore[import-untyped]
from google.protobuf.message import Message  # type: ignore[import-untyped]
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from closedloop._errors import ClosedloopError
from closedloop.server._admin import admin_routes
from closedloop.server._auth import ApiKeys, bearer_key
from closedloop.server._bodies import BodyTooLargeError, bounded_body
from closedloop.server._config import ServeConfig
from closedloop.server._feedback import feedback_routes
from closedloop.server._feedback_settings import FeedbackEndpointSettings
from closedloop.server._mapping_pool import MappingJob, MappingPool
from closedloop.server._metrics import ServeMetrics
from closedloop.server._otlp import OtlpFormat, OtlpRequestError, request_format
from closedloop.server._pipeline import Pipeline
from closedloop.server._query import query_routes
from closedloop.server._registry_view import RegistryView
from closedloop.server._ui import ui_routes
from closedloop.store._spool_home import state_directory

logger = logging.getLogger("closedloop.server")

FULL_RETRY_AFTER_S: Final = 5
"""A full pipeline is a store that is down or behind: its retries back off for seconds."""
BUSY_RETRY_AFTER_S: Final = 1
"""Too many requests at once clears as soon as one of them is decoded."""

# The collector's HTTP status -> gRPC code (consumererror's NewStatusFromMsgAndHTTPCode).
_GRPC_CODES: Final = {400: 3, 429: 8, 503: 14}  # INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE
_GRPC_UNKNOWN: Final = 2


class PipelineFullError(ClosedloopError, RuntimeError):
    """The exporter refused the request's spans: memory and spool are full."""


class _Receiver:
    """The ``/v1/traces`` endpoint and its counters."""

    def __init__(self, pipeline: Pipeline, config: ServeConfig) -> None:
        self._pipeline = pipeline
        self._max_body_bytes = config.max_body_bytes
        self._max_in_flight = config.max_concurrent_requests
        self.mapping = MappingPool(config.workers)
        self._reads = pipeline.sampler.config.attributes_read()
        self.in_flight = 0  # only touched on the event loop
        self.responses: Counter[int] = Counter()

    def response_counts(self) -> dict[str, int]:
        """Responses so far by status code (499: the client left before the answer)."""
        return {str(code): n for code, n in sorted(self.responses.items())}

    async def traces(self, request: Request) -> Response:
        response = await self._handle(request)
        self.responses[response.status_code] += 1
        return response

    async def _handle(self, request: Request) -> Response:
        try:
            fmt = request_format(request.headers.get("content-type"))
        except OtlpRequestError as error:
            return _status(error.status, error.reason, OtlpFormat.PROTOBUF)
        if self.in_flight >= self._max_in_flight:
            return _status(
                503,
                f"serve is decoding {self.in_flight} requests already; retry later",
                fmt,
                BUSY_RETRY_AFTER_S,
            )
        self.in_flight += 1
        try:
            body = await self._body(request)
            return await run_in_threadpool(
                self._export, body, fmt, request.headers.get("content-encoding")
            )
        except OtlpRequestError as error:
            return _status(error.status, error.reason, fmt)
        except PipelineFullError:
            return _status(
                503,
                "the store is not keeping up (memory queue and spool are full); retry later",
                fmt,
                FULL_RETRY_AFTER_S,
            )
        except ClientDisconnect:
            return Response(status_code=499)  # nobody reads it; nginx's "client closed"
        finally:
            self.in_flight -= 1

    async def _body(self, request: Request) -> bytes:
        """The body, read no further than one chunk past ``max_body_bytes``."""
        try:
            return await bounded_body(request, self._max_body_bytes)
        except BodyTooLargeError as error:
            reason = f"request body is over the {error.limit}-byte limit"
            raise OtlpRequestError(413, reason) from None

    def _export(self, body: bytes, fmt: OtlpFormat, content_encoding: str | None) -> Response:
        """Decode, convert and hand over (on a worker thread: protobuf parsing and the
        exporter's encoding are CPU work the event loop must not wait for)."""
        job = MappingJob(
            body, fmt, content_encoding, self._max_body_bytes, self._pipeline.forwards, self._reads
        )
        reception = self.mapping.receive(job)
        if not self._pipeline.accept(reception.views):
            raise PipelineFullError
        response = ExportTraceServiceResponse()
        if reception.rejected:
            response.partial_success.rejected_spans = reception.rejected
            response.partial_success.error_message = reception.error_message
        return Response(_encode(response, fmt), 200, media_type=fmt.value)


def _encode(message: Message, fmt: OtlpFormat) -> bytes:
    if fmt is OtlpFormat.JSON:
        text: str = json_format.MessageToJson(message, indent=None)
        return text.encode()
    data: bytes = message.SerializeToString()
    return data


def _status(
    status: int, reason: str, fmt: OtlpFormat, retry_after_s: int | None = None
) -> Response:
    """A refusal as OTLP/HTTP wants it: a ``google.rpc.Status`` body; for 429/503 the
    ``Retry-After`` header and, as the collector sends, a ``RetryInfo`` detail."""
    message = Status(code=_GRPC_CODES.get(status, _GRPC_UNKNOWN), message=reason)
    headers = None
    if retry_after_s is not None:
        message.details.add().Pack(RetryInfo(retry_delay=Duration(seconds=retry_after_s)))
        headers = {"Retry-After": str(retry_after_s)}
    return Response(_encode(message, fmt), status, headers=headers, media_type=fmt.value)


def create_app(pipeline: Pipeline, config: ServeConfig) -> Starlette:
    """The ASGI app over an open ``pipeline``; it neither opens nor closes it."""
    receiver = _Receiver(pipeline, config)

    def healthz(request: Request) -> Response:
        """Liveness, and what the receiver and pipeline did so far (on a worker thread: the
        exporter's stats wait for its lock, which a spool fsync holds)."""
        return JSONResponse(
            {
                "status": "ok",
                "requests_in_flight": receiver.in_flight,
                "mapping": {
                    "workers": receiver.mapping.workers,
                    "restarts": receiver.mapping.restarts,
                },
                "responses": receiver.response_counts(),
                "pipeline": pipeline.stats().as_dict(),
            }
        )

    keys = ApiKeys(config.api_keys)

    def authorize(request: Request) -> bool:
        """The query API and /metrics: open on loopback, an API key beyond it (Contract 6)."""
        if config.loopback:
            return True
        return keys.match(bearer_key(request.headers.get("authorization", ""))) is not None

    state = config.state_dir or state_directory() / "serve"
    state.mkdir(parents=True, exist_ok=True)
    feedback = FeedbackEndpointSettings(
        nonce_file=state / "feedback-nonces",
        api_keys=config.api_keys,
        cors_origins=config.cors_origins,
    )
    metrics = ServeMetrics(pipeline, receiver)
    routes = [
        Route("/v1/traces", receiver.traces, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        metrics.route(authorize),
        *feedback_routes(feedback, lambda spans: not pipeline.accept_spans(spans).refused),
        *query_routes(pipeline.store, authorize=authorize, live=pipeline.stats),
        *admin_routes(pipeline, authorize=authorize),
        *ui_routes(
            pipeline.store,
            RegistryView(config.prompts_dir),
            authorize=authorize,
            live=pipeline.stats,
        ),
    ]
    app = Starlette(routes=routes, middleware=[metrics.middleware(routes)])
    app.state.receiver = receiver
    return app
