"""``POST /v1/feedback``: feedback from apps in other languages and from browsers.

The body becomes the span ``closedloop.feedback.record()`` makes: its fields pass the
recorder's own checks (``check_signal``, the timestamp window) and the span is made by the
recorder's ``emit``, on a private TracerProvider whose processor hands each finished span
to the server's pipeline, so feedback is stored and sampled like any span sent over OTLP::

    app = Starlette(routes=[*otlp_routes, *feedback_routes(settings, pipeline.accept)])

Order of checks: CORS origin, rate limit, media type, size, JSON, credentials (API key or
token signature and expiry), fields, what the token allows, single use, the pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import re
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from closedloop.feedback._recorder import (
    InvalidFeedbackField,
    check_sent_timestamp_ns,
    check_signal,
    emit,
    tracer_for,
)
from closedloop.feedback._targets import Target, resolve
from closedloop.feedback._tokens import KEY_SPEC
from closedloop.privacy._keys import resolve_key
from closedloop.server._auth import (
    ApiKeys,
    FeedbackRefused,
    bearer_key,
    replay_key,
    target_for,
    verified,
)
from closedloop.server._feedback_settings import FeedbackEndpointSettings
from closedloop.server._nonces import NonceStore, NonceStoreFull
from closedloop.server._ratelimit import RateLimiter

FEEDBACK_PATH: Final = "/v1/feedback"
TOKEN_HEADER: Final = "X-Closedloop-Token"

Sink: TypeAlias = Callable[[Sequence[ReadableSpan]], bool]
"""Takes finished spans into the server's pipeline; False when it is full."""

_ALLOWED_HEADERS: Final = "Content-Type, Authorization, X-Closedloop-Token"
_ALLOWED_HEADER_NAMES: Final = frozenset(
    name.strip().lower() for name in _ALLOWED_HEADERS.split(",")
)
_PREFLIGHT_MAX_AGE_S: Final = 600
_FIELDS: Final = (
    "trace_id",
    "span_id",
    "name",
    "value",
    "label",
    "comment",
    "timestamp",
    "kind",
    "source",
    "token",
)
_EXAMPLE: Final = '{"trace_id": "<32 hex>", "name": "thumbs", "value": 1}'
_TIMESTAMP_FIX: Final = (
    "pass nanoseconds since the epoch (an int) or an RFC 3339 time with an offset, "
    "e.g. 2025-06-15T12:00:00.5Z"
)
_RFC3339: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

# Whether the pipeline took the spans the current request's emit() ended.
_ACCEPTED: ContextVar[list[bool]] = ContextVar("closedloop_feedback_accepted")


class _SinkProcessor(SpanProcessor):
    """Hands each finished feedback span to the pipeline and tells the request the answer."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def on_end(self, span: ReadableSpan) -> None:
        _ACCEPTED.get().append(self._sink([span]))


@dataclass(frozen=True)
class _Feedback:
    """A request's feedback, checked: the arguments ``emit`` takes."""

    target: Target
    name: str
    value: Any
    label: Any
    comment: Any
    kind: Any
    source: Any
    timestamp_ns: int


def feedback_routes(settings: FeedbackEndpointSettings, sink: Sink) -> list[BaseRoute]:
    """``POST /v1/feedback`` and its CORS preflight, for the server's app to mount.

    ``sink`` is called on a worker thread (as the OTLP route calls the pipeline: it may
    write to the store) with each finished feedback span, and returns False when the
    pipeline is full (the request gets 503 with Retry-After). The nonce file is read and
    compacted, and the token key resolved, now: at start-up.
    """
    endpoint = _FeedbackEndpoint(settings, sink)
    return [Route(FEEDBACK_PATH, endpoint.handle, methods=["POST", "OPTIONS"])]


class _FeedbackEndpoint:
    def __init__(self, settings: FeedbackEndpointSettings, sink: Sink) -> None:
        self._settings = settings
        self._keys = ApiKeys(settings.api_keys)
        self._token_key, _ = resolve_key(KEY_SPEC, settings.token_key)
        self._nonces = NonceStore(settings.nonce_file, settings.max_nonces, now=settings.clock())
        self._by_key = RateLimiter(settings.key_rate, settings.max_rate_keys)
        self._by_address = RateLimiter(settings.address_rate, settings.max_rate_keys)
        # Every feedback span is kept here, whatever OTEL_TRACES_SAMPLER says: the server's
        # tail sampler decides, as for spans received over OTLP.
        provider = TracerProvider(
            sampler=ALWAYS_ON,
            resource=Resource.create({SERVICE_NAME: settings.service_name}),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(_SinkProcessor(sink))
        self._tracer = tracer_for(provider)

    async def handle(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        response: Response
        if origin is not None and origin not in self._settings.cors_origins:
            response = _error(
                FeedbackRefused(
                    403,
                    f"origin {origin!r} may not send feedback; start the server with "
                    f"--cors-origin {origin} to allow it",
                )
            )
        elif request.method == "OPTIONS":
            response = _preflight(request, origin)
        else:
            try:
                response = JSONResponse(await self._accept(request))
            except FeedbackRefused as refused:
                response = _error(refused)
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Vary"] = "Origin"
        return response

    async def _accept(self, request: Request) -> dict[str, str]:
        now = self._settings.clock()
        authorization = request.headers.get("authorization")
        key = None if authorization is None else self._keys.match(bearer_key(authorization))
        if key is None:
            _limit(self._by_address, request.client.host if request.client else "", now)
            if authorization is not None:
                raise FeedbackRefused(
                    401,
                    "unknown API key: send 'Authorization: Bearer <key>' with one of the "
                    "keys the server was started with",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        else:
            _limit(self._by_key, str(key), now)
        fields = _json_object(await _body(request, self._settings.max_body_bytes))
        if key is not None:
            return await run_in_threadpool(self._record, _feedback(fields, now))
        token = _token(request, fields)
        grant = verified(token, key=self._token_key, now=now)
        feedback = _feedback(fields, now)
        target = target_for(grant, feedback.target, feedback.name)
        return await run_in_threadpool(
            self._record_once,
            dataclasses.replace(feedback, target=target),
            replay_key(token, feedback.name),
            grant.expires_at,
            now,
        )

    def _record_once(
        self, feedback: _Feedback, used: str, expires_at: float, now: float
    ) -> dict[str, str]:
        """Spend the token's use of this name, then record; a failure gives the use back."""
        try:
            fresh = self._nonces.claim(used, expires_at, now)
        except NonceStoreFull as full:
            raise FeedbackRefused(
                503,
                f"{full}; send it again then",
                headers={"Retry-After": str(math.ceil(full.retry_after_s))},
            ) from None
        if not fresh:
            raise FeedbackRefused(
                409,
                f"this token was already used for {feedback.name!r}; a token sends each "
                "of its names once, so the page needs a fresh token to send it again",
                field="token",
            )
        try:
            return self._record(feedback)
        except BaseException:
            self._nonces.release(used)
            raise

    def _record(self, feedback: _Feedback) -> dict[str, str]:
        """Emit the span; the processor hands it to the pipeline before emit returns."""
        outcome: list[bool] = []
        reset = _ACCEPTED.set(outcome)
        try:
            ids = emit(
                self._tracer,
                feedback.target,
                feedback.name,
                feedback.value,
                label=feedback.label,
                comment=feedback.comment,
                kind=feedback.kind,
                source=feedback.source,
                timestamp_ns=feedback.timestamp_ns,
            )
        finally:
            _ACCEPTED.reset(reset)
        if ids is None or outcome != [True]:
            retry = self._settings.busy_retry_after_s
            raise FeedbackRefused(
                503,
                f"the server's pipeline is full; send the feedback again in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        return {"trace_id": ids.trace_id, "span_id": ids.span_id}


def _error(refused: FeedbackRefused) -> JSONResponse:
    content = {"error": refused.message}
    if refused.field is not None:
        content["field"] = refused.field
    return JSONResponse(content, status_code=refused.status, headers=refused.headers)


def _preflight(request: Request, origin: str | None) -> Response:
    """Allow what a page sending feedback needs, and nothing else (no credentials)."""
    method = request.headers.get("access-control-request-method")
    asked = request.headers.get("access-control-request-headers", "")
    asked_for = {header.strip().lower() for header in asked.split(",") if header.strip()}
    if origin is None or method != "POST" or not asked_for <= _ALLOWED_HEADER_NAMES:
        return _error(
            FeedbackRefused(
                403,
                f"CORS preflight refused: this endpoint takes POST with the headers "
                f"{_ALLOWED_HEADERS} from a configured origin",
            )
        )
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S),
        },
    )


def _limit(limiter: RateLimiter, caller: str, now: float) -> None:
    wait = limiter.take(caller, now)
    if wait > 0:
        raise FeedbackRefused(
            429,
            f"too many feedback requests; send again in {wait:.1f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def _body(request: Request, limit: int) -> bytes:
    """The body as JSON, read up to ``limit`` bytes (a larger one is refused, not buffered).

    The media type must be JSON: a browser then preflights the request, so CORS decides
    which pages may send it (a text/plain POST would skip the preflight)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise FeedbackRefused(415, "send the feedback as JSON with Content-Type: application/json")
    too_large = FeedbackRefused(413, f"the body is over {limit} bytes; send one feedback signal")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(body, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise FeedbackRefused(
            400, f"the body is not JSON ({error}); send an object such as {_EXAMPLE}"
        ) from None
    if not isinstance(fields, dict):
        raise FeedbackRefused(400, f"the body must be a JSON object such as {_EXAMPLE}")
    for field, item in fields.items():
        if field not in _FIELDS:
            raise FeedbackRefused(
                400,
                f"unknown field {field!r}; the fields are {', '.join(_FIELDS)}",
                field=field,
            )
        if isinstance(item, str) and not _is_unicode(item):
            raise FeedbackRefused(
                400,
                f"{field} has an unpaired surrogate escape (\\ud800-\\udfff): not text",
                field=field,
            )
    return fields


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse a repeated key rather than let the last copy win silently."""
    fields: dict[str, Any] = {}
    for key, item in pairs:
        if key in fields:
            raise FeedbackRefused(400, f"{key!r} appears twice in the body; send it once")
        fields[key] = item
    return fields


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _token(request: Request, fields: dict[str, Any]) -> str:
    """The feedback token from the header or the body; if both, they must agree."""
    header = request.headers.get(TOKEN_HEADER)
    body = fields.get("token")
    if body is not None and not isinstance(body, str):
        raise FeedbackRefused(
            400,
            "token must be a string: the text closedloop.feedback.token() returned",
            field="token",
        )
    if header is not None and body is not None and header.strip() != body.strip():
        raise FeedbackRefused(
            400,
            f"the {TOKEN_HEADER} header and the token field differ; send the token once",
            field="token",
        )
    token = header if header is not None else body
    if token is None:
        raise FeedbackRefused(
            401,
            "send an API key ('Authorization: Bearer <key>') or a feedback token (the "
            f"{TOKEN_HEADER} header or the token field, from closedloop.feedback.token())",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def _feedback(fields: dict[str, Any], now: float) -> _Feedback:
    """The request's fields checked by the rules ``feedback.record`` applies, or a 400
    naming the first bad field."""
    target = _target(fields.get("trace_id"), fields.get("span_id"))
    name, value = fields.get("name"), fields.get("value")
    label, comment = fields.get("label"), fields.get("comment")
    kind, source = fields.get("kind", "explicit"), fields.get("source")
    try:
        check_signal(name, value, label=label, comment=comment, kind=kind, source=source)
    except InvalidFeedbackField as error:
        raise FeedbackRefused(400, str(error), field=error.field) from None
    timestamp_ns = _timestamp_ns(fields.get("timestamp"), round(now * 1e9))
    # check_signal refused a missing name, so the field is there, and a str.
    return _Feedback(target, fields["name"], value, label, comment, kind, source, timestamp_ns)


def _target(trace_id: Any, span_id: Any) -> Target:
    if trace_id is None:
        raise FeedbackRefused(
            400,
            "trace_id is missing; send the call's trace id, 32 hex characters",
            field="trace_id",
        )
    for field, item in (("trace_id", trace_id), ("span_id", span_id)):
        if item is not None and not isinstance(item, str):
            raise FeedbackRefused(
                400, f"{field}={item!r} is not a string; send the id as hex text", field=field
            )
    try:
        target = resolve(trace_id)
    except ValueError as error:
        raise FeedbackRefused(400, str(error), field="trace_id") from None
    if span_id is None:
        return target
    try:
        return resolve(f"{trace_id}:{span_id}")
    except ValueError as error:
        raise FeedbackRefused(400, str(error), field="span_id") from None


def _timestamp_ns(value: Any, now_ns: int) -> int:
    """When the feedback was given: ``now_ns`` when absent; an int is nanoseconds."""
    if value is None:
        return now_ns
    if isinstance(value, str):
        ns = _rfc3339_ns(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        ns = value
    else:
        raise FeedbackRefused(
            400,
            f"timestamp={value!r} is a {type(value).__name__}; {_TIMESTAMP_FIX}",
            field="timestamp",
        )
    try:
        return check_sent_timestamp_ns(ns, value, now_ns=now_ns)
    except ValueError as error:
        raise FeedbackRefused(400, str(error), field="timestamp") from None


def _rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch, every digit of the fraction kept (a datetime keeps 6)."""
    parts = _RFC3339.fullmatch(text)
    if parts is not None:
        date, clock, fraction, offset = parts.groups()
        offset = "+00:00" if offset in ("Z", "z") else offset
        with contextlib.suppress(ValueError):  # a month 13, a second 60, an offset of a day
            moment = datetime.datetime.fromisoformat(f"{date}T{clock}{offset}")
            seconds = (moment - _EPOCH) // datetime.timedelta(seconds=1)
            return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
    raise FeedbackRefused(
        400, f"timestamp={text!r} is not an RFC 3339 time; {_TIMESTAMP_FIX}", field="timestamp"
    )
