"""The lifetime of one traced LLM call: span start, response or error, end exactly once.

Operation modules (chat, responses, embeddings) say *what* to record; this module says
*how*: context and user attributes, usage and cost, content capture with redaction,
latency and time to first chunk on a monotonic clock, and error status.

Every call records the GenAI client metrics, whether its span is sampled or not (as
openai-v2 does): a 10 % head sampler must not make the metrics show 10 % of the calls and
tokens. A call whose span is not recording does only what the metrics need (duration,
error type, response model, token usage): no content capture, redaction or attributes.
It still registers what it returns (response id, stream, raw response) with its span
context, which is valid: ``feedback.call_id(reply)`` must work on every call, sampled or
not, and feedback on an unsampled call lands in that call's trace.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from closedloop import _health as health
from closedloop._cost import TokenUsage
from closedloop._runtime import current
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation._client_metrics import ClientMetrics, MetricAttributes
from closedloop.instrumentation._context import current_call_context, generation_started
from closedloop.instrumentation._observer import current_observer
from closedloop.instrumentation._settings import InstrumentationSettings
from closedloop.instrumentation.openai._content import (
    ContentScrubber,
    EncodedJson,
    WrittenMessages,
    to_json,
)
from closedloop.instrumentation.openai._stream_usage import (
    StreamUsagePolicy,
    base_url,
    endpoint_key,
)

# Fixed value sets of the span attributes (the conventions' well-known values).
OperationName = Literal["chat", "embeddings"]
ApiType = Literal["chat_completions", "responses"]
ProviderName = Literal["openai", "azure.ai.openai"]

_PRICING_PROVIDER: dict[ProviderName, str] = {"openai": "openai", "azure.ai.openai": "azure"}


class StreamState(Protocol):
    """Accumulates a stream's items into the span's response attributes."""

    content_started: bool

    def observe(self, item: Any) -> None:
        """Take one item into the span's view of the stream."""
        ...

    def conceal(self, item: Any) -> bool:
        """Undo in ``item`` what closedloop's request changed; True: hide it whole."""
        ...

    def finish(self, call: LLMCall) -> None:
        """Write what the stream delivered onto the span."""
        ...


class Operation(Protocol):
    """One kind of API call (chat completions, responses, embeddings)."""

    @property
    def operation_name(self) -> OperationName: ...

    @property
    def api_type(self) -> ApiType | None:
        """``openai.api.type``, or None when the operation has only one API."""
        ...

    @property
    def has_output_tokens(self) -> bool:
        """False when every token is input (embeddings): no output token usage."""
        ...

    def prepare(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the request kwargs with one-shot iterables materialised."""
        ...

    def with_stream_usage(self, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The request asking a stream for its usage, or None if there is nothing to ask."""
        ...

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]: ...

    def input_content(
        self, kwargs: Mapping[str, Any], scrubber: ContentScrubber
    ) -> dict[str, Any]: ...

    def record_response(self, call: LLMCall, response: Any) -> None: ...

    def measure(self, call: LLMCall, response: Any) -> None:
        """Only what the metrics need from a complete response (the span is not recording)."""
        ...

    def stream_state(self, hide_usage_chunk: bool, recording: bool) -> StreamState:
        """What follows a stream: for the span, or only for the metrics when not recording."""
        ...

    @property
    def response_type(self) -> type:
        """The SDK model of a complete response (for bodies the caller reads raw)."""
        ...

    @property
    def stream_item_type(self) -> Any:
        """The SDK type of one stream item (for streams the caller reads raw)."""
        ...


@dataclass(frozen=True)
class Endpoint:
    """Where the client sends requests, from its ``base_url``."""

    provider: ProviderName
    address: str | None
    port: int | None
    # The base URL and API version, for the stream usage policy (see ``endpoint_key``).
    key: str = field(default="", compare=False)

    @classmethod
    def of(cls, client: Any) -> Endpoint:
        """The endpoint of an SDK client (its ``base_url`` is an ``httpx`` URL)."""
        url = base_url(client)
        host = url.host or None
        port = url.port or {"https": 443, "http": 80}.get(url.scheme)
        provider: ProviderName = (
            "azure.ai.openai" if host and host.endswith(".azure.com") else "openai"
        )
        return cls(provider, host, port, endpoint_key(client))


class EndpointCache:
    """The endpoint of the client last called through: apps call through one client or a
    few, and reading a URL apart on every call would cost as much as a span attribute batch.

    A client keeps its ``base_url`` object until it is changed, so that object's identity,
    with the client's (held weakly), says when to read them again. One tuple is swapped
    whole: safe across threads.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[Any, Callable[[], Any], Endpoint] | None = None

    def of(self, resource: Any) -> Endpoint:
        client = resource._client
        url = base_url(client)
        last = self._last
        if last is not None and last[0] is url and last[1]() is client:
            return last[2]
        endpoint = Endpoint.of(client)
        try:
            self._last = (url, weakref.ref(client), endpoint)
        except TypeError:  # a client that cannot be weakly referenced is read every call
            self._last = None
        return endpoint


@dataclass(frozen=True)
class Hooks:
    """What every call of one instrumentation shares."""

    tracer: Tracer
    settings: InstrumentationSettings
    stream_usage: StreamUsagePolicy
    metrics: ClientMetrics
    # One-text messages already written with the settings' redactor (None: write each anew).
    written: WrittenMessages | None = None
    endpoints: EndpointCache = field(default_factory=EndpointCache)


# Held for a check and a store while a call ends: one lock for all calls, not one each.
_ENDING = threading.Lock()


class LLMCall:
    """Owns one CLIENT span; every method is safe to call in any order, any number of times.

    On a span that is not recording, methods keep only what the metrics need.
    """

    __slots__ = (
        "_cost",
        "_done_at",
        "_ended",
        "_error_type",
        "_first_chunk_at",
        "_layer",
        "_observer",
        "_pending",
        "_response_model",
        "_span_context",
        "_started",
        "_usage",
        "endpoint",
        "metrics",
        "operation",
        "recording",
        "request_model",
        "scrubber",
        "settings",
        "span",
    )

    def __init__(
        self, hooks: Hooks, operation: Operation, endpoint: Endpoint, kwargs: Mapping[str, Any]
    ) -> None:
        settings = hooks.settings
        self.settings = settings
        self.metrics = hooks.metrics
        self.operation = operation
        self.endpoint = endpoint
        self.request_model = kwargs.get("model")
        self._first_chunk_at: float | None = None
        self._done_at: float | None = None
        # What the metrics need at the end, kept as the span learns it.
        self._response_model: str | None = None
        self._usage: TokenUsage | None = None
        self._cost: float | None = None  # priced once, in record_usage, for the observer too
        self._error_type: str | None = None
        self._ended = False
        # Attributes learnt during the call, set on the span in one batch when it ends.
        self._pending: dict[str, AttributeValue] = {}
        self._layer = current_call_context()
        self._observer = current_observer()
        self.span: Span = hooks.tracer.start_span(
            f"{operation.operation_name} {self.request_model}",
            kind=SpanKind.CLIENT,
            attributes=self._start_attributes(kwargs),
            links=[Link(linked) for linked in self._observer.links] if self._observer else None,
        )
        # Asked once: the span records until it ends, and only end() ends it.
        self.recording = self.span.is_recording()
        self._span_context = self.span.get_span_context()
        if operation.operation_name == "chat":  # a generation: what call_id() names
            generation_started(self._layer, self._span_context)
        self.scrubber = (
            ContentScrubber(settings.redactor, settings.max_content_chars, hooks.written)
            if self.recording and settings.capture_content
            else None
        )
        if self.scrubber is not None:
            try:
                self._set_json(operation.input_content(kwargs, self.scrubber.section()))
            except Exception as error:
                health.record_failure(f"{operation.operation_name}.input_content", error)
        self._started = time.perf_counter()

    def _start_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
        values: dict[str, AttributeValue] = {
            attr.OPERATION_NAME: self.operation.operation_name,
            attr.PROVIDER_NAME: self.endpoint.provider,
        }
        if self.operation.api_type:
            values[attr.OPENAI_API_TYPE] = self.operation.api_type
        if isinstance(self.request_model, str):
            values[attr.REQUEST_MODEL] = self.request_model
        if self.endpoint.address:
            values[attr.SERVER_ADDRESS] = self.endpoint.address
        if self.endpoint.port:
            values[attr.SERVER_PORT] = self.endpoint.port
        values.update(self.operation.request_attributes(kwargs))
        layer = self._layer
        if layer is not None:
            values.update(layer.attributes)
            if layer.tools:
                values[attr.TOOLS] = list(layer.tools)
            if layer.user_id is not None:
                self._add_user(
                    values, layer.user_id, shadow=bool(layer.attributes.get(attr.SHADOW))
                )
        return values

    def _add_user(self, values: dict[str, AttributeValue], user_id: str, shadow: bool) -> None:
        user_hash = self.settings.user_hasher().hash(user_id)
        values[attr.USER_HASH] = user_hash
        if shadow:
            return
        try:
            interaction = self.settings.interactions.increment(user_hash)
        except Exception as error:
            # An app-provided counter (Redis, a database) failing must not untrace the call.
            health.record_failure("interaction_counter.increment", error)
            return
        if isinstance(interaction, int) and not isinstance(interaction, bool):
            values[attr.USER_INTERACTION] = interaction
            values[attr.USER_NEW] = interaction <= self.settings.new_user_interactions
        else:
            health.record_failure(
                "interaction_counter.increment",
                TypeError(f"increment() returned {interaction!r}, not an int"),
            )

    def _put(self, key: str, value: AttributeValue) -> None:
        """Set ``key`` when the span ends; a key set again moves last, as on a span."""
        pending = self._pending
        pending.pop(key, None)
        pending[key] = value

    def _set_json(self, content: Mapping[str, Any]) -> None:
        for key, value in content.items():
            if value:
                self._put(key, to_json(value))

    def set(self, values: Mapping[str, AttributeValue | None]) -> None:
        """Set the attributes whose value is known (None means unknown: not set). The
        response model is kept for the metrics even when the span is not recording."""
        response_model = values.get(attr.RESPONSE_MODEL)
        if isinstance(response_model, str):
            self._response_model = response_model
        response_id = values.get(attr.RESPONSE_ID)
        if response_id is not None:
            self._remember(response_id)
        if not self.recording:
            return
        for key, value in values.items():
            if value is not None:
                self._put(key, value)

    def measured(self, model: Any, usage: TokenUsage | None, response_id: Any = None) -> None:
        """The response model and token usage of a call whose span is not recording, and
        its response id (so that feedback given with the response finds the span)."""
        if isinstance(model, str):
            self._response_model = model
        self._usage = usage
        self._remember(response_id)

    def _remember(self, response_id: Any) -> None:
        if isinstance(response_id, str) and self._span_context.is_valid:
            current().recent_calls.remember(response_id, self._span_context)

    def register(self, obj: object) -> None:
        """Let feedback given with ``obj``, an object this call returned, find the span."""
        if self._span_context.is_valid:
            current().recent_calls.register(obj, self._span_context)

    def stream_state(self, hide_usage_chunk: bool) -> StreamState:
        """What follows this call's stream (``hide_usage_chunk``: closedloop asked usage)."""
        return self.operation.stream_state(hide_usage_chunk, self.recording)

    def add_tools_called(self, names: list[str]) -> None:
        if not names:
            return
        used = list(self._layer.tools) if self._layer is not None else []
        used.extend(name for name in names if name not in used)
        if self.recording:
            self._put(attr.TOOLS, used)

    def record_usage(self, usage: TokenUsage, reasoning_tokens: int | None, model: Any) -> None:
        """Token counts as the provider reported them, and the cost they imply."""
        self._usage = usage
        self.set(
            {
                attr.USAGE_INPUT_TOKENS: usage.input_tokens,
                attr.USAGE_OUTPUT_TOKENS: usage.output_tokens,
                attr.USAGE_CACHE_READ_INPUT_TOKENS: usage.cached_input_tokens,
                attr.USAGE_REASONING_OUTPUT_TOKENS: reasoning_tokens,
            }
        )
        self._cost = cost = self._cost_usd(usage, model)
        if cost is not None and self.recording:
            self._put(attr.COST_USD, cost)

    def _cost_usd(self, usage: TokenUsage, model: Any) -> float | None:
        """The cost of ``usage`` at the response model's price, else the request model's."""
        pricing_provider = _PRICING_PROVIDER[self.endpoint.provider]
        for candidate in (model, self.request_model):
            if isinstance(candidate, str) and candidate:
                cost = self.settings.costs.cost_usd(pricing_provider, candidate, usage)
                if cost is not None:
                    return cost
        return None

    def output_scrubber(self) -> ContentScrubber | None:
        """The scrubber with a fresh budget for the output messages (None: no capture)."""
        return self.scrubber.section() if self.scrubber is not None else None

    def record_output(self, messages: list[dict[str, Any]] | EncodedJson | None) -> None:
        if self.scrubber is not None and messages:
            self._put(attr.OUTPUT_MESSAGES, to_json(messages))

    def mark_done(self) -> float:
        """The provider finished answering (response, error, or last chunk): latency ends
        here, before closedloop's own processing of the result. Returns that moment."""
        if self._done_at is None:
            self._done_at = time.perf_counter()
        return self._done_at

    def first_chunk(self) -> None:
        """Mark the first content-bearing chunk of a stream (only the first counts)."""
        if self._first_chunk_at is None:
            self._first_chunk_at = time.perf_counter()

    def record_response(self, response: Any) -> None:
        """Response attributes from a complete (non-streamed) SDK object; guarded."""
        try:
            if not self.recording:
                self.operation.measure(self, response)
                return
            self.operation.record_response(self, response)
            request_id = getattr(response, "_request_id", None)
            if request_id is not None:
                self._put(attr.PROVIDER_REQUEST_ID, request_id)
        except Exception as error:
            health.record_failure(f"{self.operation.operation_name}.response", error)

    def record_error(self, error: BaseException) -> None:
        """``error.type``, ERROR status and an exception event with a redacted message.

        The status is set first: whatever fails while the message is redacted, the span
        still says the call failed.
        """
        error_type = type(error).__qualname__
        self._error_type = error_type
        if not self.recording:
            return
        event: dict[str, AttributeValue] = {"exception.type": error_type}
        try:
            self._put(attr.ERROR_TYPE, error_type)
            self.span.set_status(Status(StatusCode.ERROR, error_type))
            request_id = getattr(getattr(error, "response", None), "headers", {}).get(
                "x-request-id"
            )
            self.set({attr.PROVIDER_REQUEST_ID: request_id})
            if self.scrubber is not None:
                message = self.scrubber.section().text(str(error))
                event["exception.message"] = message
                event["exception.stacktrace"] = (
                    "".join(traceback.format_tb(error.__traceback__)) + f"{error_type}: {message}"
                )
                self.span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
        except Exception as failure:
            health.record_failure("record_error", failure)
        self.span.add_event("exception", event)

    def mark_failed(self, error_type: str, message: str | None) -> None:
        """A call the provider answered with a failure instead of an HTTP error."""
        self._error_type = error_type
        if not self.recording:
            return
        self._put(attr.ERROR_TYPE, error_type)
        self.span.set_status(Status(StatusCode.ERROR, error_type))
        if self.scrubber is not None and message:
            description = f"{error_type}: {self.scrubber.section().text(message)}"
            self.span.set_status(Status(StatusCode.ERROR, description))

    def end(self) -> None:
        """Latency, TTFT and redaction count, then end the span and record the call's
        metrics, sampled or not: only the first call acts."""
        with _ENDING:
            if self._ended:
                return
            self._ended = True
        duration_s = self.mark_done() - self._started
        try:
            if self.recording:
                self._set_end_attributes(duration_s)
                self.span.set_attributes(self._pending)
        except Exception as error:
            health.record_failure("span.attributes", error)
        try:
            self.span.end()  # span processors run here; theirs are not the caller's errors
        except Exception as error:
            health.record_failure("span.end", error)
        self._record_metrics(duration_s)
        self._report_cost()

    def _set_end_attributes(self, duration_s: float) -> None:
        """Latency, time to first chunk and what content capture did."""
        self._put(attr.LATENCY_MS, duration_s * 1000.0)
        if self._first_chunk_at is not None:
            self._put(attr.RESPONSE_TIME_TO_FIRST_CHUNK, self._first_chunk_at - self._started)
        if self.scrubber is not None:
            if self.scrubber.redactor is not None:
                self._put(attr.REDACTIONS, self.scrubber.count)
            if self.scrubber.truncated:
                self._put(attr.CONTENT_TRUNCATED, True)

    def _record_metrics(self, duration_s: float) -> None:
        try:
            self.metrics.record(
                self._metric_attributes(),
                duration_s,
                self._usage,
                self.operation.has_output_tokens,
                self._error_type,
            )
        except Exception as error:
            health.record_failure("metrics.record", error)

    def _metric_attributes(self) -> MetricAttributes:
        """The call's metric attributes: operation, provider, models and server."""
        request_model = self.request_model if isinstance(self.request_model, str) else None
        return _metric_attributes(
            self.operation.operation_name, self.endpoint, request_model, self._response_model
        )

    def _report_cost(self) -> None:
        """Tell the block's observer what the call cost, sampled or not (a shadow budget)."""
        on_cost = self._observer.on_cost if self._observer is not None else None
        if on_cost is None:
            return
        try:
            usage, cost = self._usage, self._cost
            if cost is None and usage is not None:  # not recording: record_usage never ran
                cost = self._cost_usd(usage, self._response_model)
            on_cost(cost)
        except Exception as error:
            health.record_failure("observer.on_cost", error)

    @property
    def ended(self) -> bool:
        return self._ended


@functools.lru_cache(maxsize=256)
def _metric_attributes(
    operation_name: str, endpoint: Endpoint, request_model: str | None, response_model: str | None
) -> MetricAttributes:
    """Built once per combination: an app calls a few models at a few endpoints."""
    attributes: dict[str, AttributeValue] = {
        attr.OPERATION_NAME: operation_name,
        attr.PROVIDER_NAME: endpoint.provider,
    }
    if request_model is not None:
        attributes[attr.REQUEST_MODEL] = request_model
    if response_model is not None:
        attributes[attr.RESPONSE_MODEL] = response_model
    if endpoint.address:
        attributes[attr.SERVER_ADDRESS] = endpoint.address
    if endpoint.port:
        attributes[attr.SERVER_PORT] = endpoint.port
    return MetricAttributes.of(attributes)
