"""Seeded, realistic LLM traffic as real OTel spans, with the truth kept alongside.

Store, view and sampling tests need data that looks like production: several prompts and
versions, models with their own latency and price, returning and new users, errors,
streams, embeddings, multi-call traces, shadow calls, and feedback of every kind arriving
seconds to weeks late (sometimes changed, sometimes only by trace id), spread over days.
``generate_traffic`` produces that through the OTel SDK and returns the generated facts
too, so results can be checked by independent computation.

Why not the real instrumentation: the real path (openai SDK -> local server -> instrumentor)
runs a few hundred calls per second here, but it cannot place calls on past days nor give
them chosen latencies, which the per-day and percentile views need. So calls are built
here, with the instrumentation's own settings (user hashing, interaction counter, new-user
threshold, prices), and ``tests/store/test_traffic_matches_instrumentation.py`` proves
that every kind of span carries exactly the attribute keys and value types the real
instrumentation writes for the same inputs.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from closedloop._cost import TokenUsage
from closedloop.feedback._recorder import emit
from closedloop.feedback._targets import Target
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation._settings import InstrumentationSettings
from closedloop.instrumentation.openai._content import to_json
from closedloop.privacy import UserHasher

DAY_NS = 86_400 * 1_000_000_000
PROMPTS = {"support": ("v1", "v2", "v3"), "triage": ("v1", "v2")}
MODELS = {"gpt-4o-mini": 450.0, "gpt-4o": 900.0, "o3-mini": 1800.0}
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 1536
TEMPERATURES = (None, 0.0, 0.2, 0.7)
SAFETY_LEVELS = ("none", "low", "medium", "high")
# What an OpenAI endpoint adds to every call (as the local test server does).
SERVER_ADDRESS, SERVER_PORT = "api.openai.com", 443
RATE_LIMITED = "Error code: 429 - Rate limit reached for requests."


class _SeededIds(IdGenerator):
    """Deterministic trace and span ids, so a seed reproduces the same traffic."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


@dataclass
class Call:
    """One generated LLM call: its inputs (what the app asked) and what its span says."""

    trace_id: str
    span_id: str
    start_ns: int
    operation: str  # "chat" or "embeddings"
    stream: bool
    temperature: float | None
    prompt_name: str
    prompt_version: str
    model: str
    latency_ms: float
    ttft_s: float | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    is_error: bool
    shadow: bool
    user_hash: str
    conversation_id: str
    turn: int
    input_text: str
    output_text: str

    @property
    def generation(self) -> bool:
        """A call that answers (metrics are about these; embeddings are counted apart)."""
        return self.operation == "chat"


@dataclass
class Feedback:
    """One generated feedback signal, and the call it is about."""

    trace_id: str
    span_id: str
    target_span_id: str
    call: Call
    timestamp_ns: int
    kind: str
    name: str
    value: float | None
    label: str
    explanation: str
    source: str


@dataclass
class Traffic:
    """Spans in arrival order (calls first, late feedback after), plus the truth."""

    spans: list[ReadableSpan] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    """What one app request shares between its calls."""

    parent: Span
    conversation: str
    prompt: str
    version: str


def _messages(role: str, text: str, **extra: str) -> str:
    """Content in the GenAI semantic-convention JSON shape, as the instrumentation writes it."""
    return to_json([{"role": role, "parts": [{"type": "text", "content": text}], **extra}])


def _hex_trace(span: Span) -> str:
    return trace.format_trace_id(span.get_span_context().trace_id)


def _hex_span(span: Span) -> str:
    return trace.format_span_id(span.get_span_context().span_id)


class _Generator:
    def __init__(
        self, seed: int, days: int, users: int, start_ns: int, settings: InstrumentationSettings
    ) -> None:
        self.rng = random.Random(seed)
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": "support-bot", "deployment.environment": "test"}
            ),
            id_generator=_SeededIds(self.rng),
        )
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("closedloop.testing.traffic", "1")
        self.days = days
        self.start_ns = start_ns
        self.users = [f"user-{index}" for index in range(users)]
        self.settings = settings
        self.traffic = Traffic()
        self.pending_feedback: list[tuple[int, Call, str, dict[str, Any]]] = []

    def user(self) -> str:
        return self.users[min(int(self.rng.paretovariate(1.2)) - 1, len(self.users) - 1)]

    def common(self, request: _Request, shadow: bool, turn: int) -> dict[str, AttributeValue]:
        """What every call's span gets from the endpoint and the app's context (and user)."""
        user_hash = self.settings.user_hasher().hash(self.user())
        values: dict[str, AttributeValue] = {
            attr.PROVIDER_NAME: "openai",
            attr.SERVER_ADDRESS: SERVER_ADDRESS,
            attr.SERVER_PORT: SERVER_PORT,
            attr.CONVERSATION_ID: request.conversation,
            attr.PROMPT_NAME: request.prompt,
            attr.PROMPT_VERSION: request.version,
            attr.TURN: turn,
            attr.USER_HASH: user_hash,
        }
        if shadow:
            values[attr.SHADOW] = True
        else:
            interaction = self.settings.interactions.increment(user_hash)
            values[attr.USER_INTERACTION] = interaction
            values[attr.USER_NEW] = interaction <= self.settings.new_user_interactions
        return values

    def finish(
        self,
        request: _Request,
        name: str,
        start_ns: int,
        *,
        latency_ms: float,
        values: dict[str, AttributeValue],
        error: bool,
    ) -> Span:
        """The call's span, ended ``latency_ms`` after ``start_ns``."""
        values[attr.LATENCY_MS] = latency_ms
        values[attr.REDACTIONS] = 0
        values[attr.PROVIDER_REQUEST_ID] = f"req_{self.rng.getrandbits(48):x}"
        span = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(request.parent),
            kind=SpanKind.CLIENT,
            attributes=values,
            start_time=start_ns,
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, f"RateLimitError: {RATE_LIMITED}"))
            span.add_event(
                "exception",
                {
                    "exception.type": "RateLimitError",
                    "exception.message": RATE_LIMITED,
                    "exception.stacktrace": f"  File ...\nRateLimitError: {RATE_LIMITED}",
                },
                timestamp=start_ns + int(latency_ms * 1_000_000),
            )
        span.end(end_time=start_ns + int(latency_ms * 1_000_000))
        return span

    def chat(self, request: _Request, start_ns: int, shadow: bool, turn: int) -> Call:
        rng = self.rng
        model = rng.choice(list(MODELS))
        is_error = rng.random() < 0.04
        stream = rng.random() < 0.4
        temperature = rng.choice(TEMPERATURES)
        slower = 1.0 + 0.15 * (PROMPTS[request.prompt].index(request.version))
        latency_ms = round(rng.lognormvariate(math.log(MODELS[model] * slower), 0.5), 3)
        ttft_s = (
            round(latency_ms / 1000 * rng.uniform(0.05, 0.3), 6)
            if stream and not is_error
            else None
        )
        input_tokens = int(rng.lognormvariate(6, 0.6)) + 10
        cached = input_tokens // 2 if rng.random() < 0.3 else 0
        output_tokens = 0 if is_error else int(rng.lognormvariate(5, 0.5)) + 1
        reasoning = output_tokens // 2 if model.startswith("o") else 0
        usage = TokenUsage(input_tokens, output_tokens, cached)
        cost = None if is_error else self.settings.costs.cost_usd("openai", model, usage)
        question = f"Question {rng.randint(1, 10**6)} about order {rng.randint(1000, 9999)}"
        answer = "" if is_error else f"Answer for {question.lower()}"
        values = self.common(request, shadow, turn)
        values.update(
            {
                attr.OPERATION_NAME: "chat",
                attr.OPENAI_API_TYPE: "chat_completions",
                attr.REQUEST_MODEL: model,
                attr.REQUEST_STREAM: stream,
                attr.INPUT_MESSAGES: _messages("user", question),
            }
        )
        if temperature is not None:
            values[attr.REQUEST_TEMPERATURE] = temperature
        if ttft_s is not None:
            values[attr.RESPONSE_TIME_TO_FIRST_CHUNK] = ttft_s
        if is_error:
            values[attr.ERROR_TYPE] = "RateLimitError"
        else:
            values.update(
                {
                    attr.RESPONSE_MODEL: f"{model}-2024-07-18",
                    attr.RESPONSE_ID: f"chatcmpl-{rng.getrandbits(48):x}",
                    attr.RESPONSE_FINISH_REASONS: ["stop"],
                    attr.OPENAI_RESPONSE_SERVICE_TIER: "default",
                    attr.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_generated",
                    attr.USAGE_INPUT_TOKENS: input_tokens,
                    attr.USAGE_OUTPUT_TOKENS: output_tokens,
                    attr.USAGE_CACHE_READ_INPUT_TOKENS: cached,
                    attr.USAGE_REASONING_OUTPUT_TOKENS: reasoning,
                    attr.OUTPUT_MESSAGES: _messages("assistant", answer, finish_reason="stop"),
                }
            )
            if cost is not None:
                values[attr.COST_USD] = cost
        span = self.finish(
            request, f"chat {model}", start_ns, latency_ms=latency_ms, values=values, error=is_error
        )
        call = Call(
            _hex_trace(span),
            _hex_span(span),
            start_ns,
            "chat",
            stream,
            temperature,
            request.prompt,
            request.version,
            model,
            latency_ms,
            ttft_s,
            input_tokens,
            output_tokens,
            cached,
            cost,
            is_error,
            shadow,
            str(values[attr.USER_HASH]),
            request.conversation,
            turn,
            str(values[attr.INPUT_MESSAGES]),
            str(values.get(attr.OUTPUT_MESSAGES, "")),
        )
        self.traffic.calls.append(call)
        return call

    def embedding(self, request: _Request, start_ns: int) -> Call:
        """An embeddings call in the request's context (retrieval before the answer, or
        caching after it): an LLM call, but no generation."""
        rng = self.rng
        input_tokens = rng.randint(3, 60)
        latency_ms = round(rng.lognormvariate(math.log(80.0), 0.4), 3)
        cost = self.settings.costs.cost_usd("openai", EMBEDDING_MODEL, TokenUsage(input_tokens))
        values = self.common(request, False, 1)
        values.update(
            {
                attr.OPERATION_NAME: "embeddings",
                attr.REQUEST_MODEL: EMBEDDING_MODEL,
                attr.RESPONSE_MODEL: EMBEDDING_MODEL,
                attr.EMBEDDINGS_DIMENSION_COUNT: EMBEDDING_DIMENSIONS,
                attr.USAGE_INPUT_TOKENS: input_tokens,
                attr.USAGE_OUTPUT_TOKENS: 0,
                attr.USAGE_CACHE_READ_INPUT_TOKENS: 0,
            }
        )
        if cost is not None:
            values[attr.COST_USD] = cost
        name = f"embeddings {EMBEDDING_MODEL}"
        span = self.finish(
            request, name, start_ns, latency_ms=latency_ms, values=values, error=False
        )
        call = Call(
            _hex_trace(span),
            _hex_span(span),
            start_ns,
            "embeddings",
            False,
            None,
            request.prompt,
            request.version,
            EMBEDDING_MODEL,
            latency_ms,
            None,
            input_tokens,
            0,
            0,
            cost,
            False,
            False,
            str(values[attr.USER_HASH]),
            request.conversation,
            1,
            "",
            "",
        )
        self.traffic.calls.append(call)
        return call

    def request(self, index: int, requests: int) -> list[tuple[Call, str | None]]:
        """One app request: a root span with 1-3 generations (some with a shadow call, some
        with an embedding call before or after them), all under one prompt version.

        Feedback may name the request span instead of the call only when the request made
        one user-facing generation, so the truth stays unambiguous.
        """
        rng = self.rng
        start_ns = self.start_ns + int(index / requests * self.days * DAY_NS)
        root = self.tracer.start_span("handle_request", kind=SpanKind.SERVER, start_time=start_ns)
        prompt = rng.choice(list(PROMPTS))
        request = _Request(
            root, f"conv-{rng.randint(1, requests // 3 + 1)}", prompt, rng.choice(PROMPTS[prompt])
        )
        embedding_at = rng.choice((None,) * 8 + (0, 9_000_000))
        if embedding_at == 0:
            self.embedding(request, start_ns + 500_000)
        made = [
            self.chat(request, start_ns + turn * 1_000_000, False, turn)
            for turn in range(1, rng.choice((1, 1, 1, 2, 3)) + 1)
        ]
        if rng.random() < 0.05:
            self.chat(request, start_ns + 5_000_000, True, 1)
        if embedding_at:
            self.embedding(request, start_ns + embedding_at)
        root.end(end_time=start_ns + 10_000_000_000)
        root_span_id = _hex_span(root) if len(made) == 1 else None
        return [(call, root_span_id) for call in made]

    def feedback_for(self, call: Call, root_span_id: str | None) -> None:
        """Feedback for ``call``; with ``root_span_id`` some of it targets the request span."""
        rng = self.rng
        quality = {"v1": 0.55, "v2": 0.65, "v3": 0.75}[call.prompt_version]
        plans: list[tuple[str, str, float | None, str]] = []
        if rng.random() < 0.3:
            for _ in range(2 if rng.random() < 0.2 else 1):  # sometimes changed later
                up = rng.random() < quality
                plans.append(("explicit", "thumbs", float(up), "up" if up else "down"))
        if rng.random() < 0.1:
            plans.append(("explicit", "rating", float(rng.randint(1, 5)), ""))
        if rng.random() < 0.05:
            plans.append(("explicit", "comment", None, ""))
        if rng.random() < 0.1:
            plans.append(("implicit", "edit_ratio", round(rng.random() * (1 - quality), 4), ""))
        for name, chance in (("retry", 0.05), ("abandoned", 0.03)):
            if rng.random() < chance:
                plans.append(("implicit", name, 1.0, ""))
        if rng.random() < 0.1:
            plans.append(("implicit", "time_to_completion_s", round(rng.uniform(5, 600), 3), ""))
        for name, chance, positive in (
            ("task_succeeded", 0.4, quality),
            ("ticket_reopened", 0.2, 1 - quality),
            ("needed_human_help", 0.08, 0.5),
            ("escalated", 0.04, 0.6),
        ):
            if rng.random() < chance:
                plans.append(("outcome", name, float(rng.random() < positive), ""))
        if rng.random() < 0.2:
            plans.append(("explicit", "safety", None, rng.choice(SAFETY_LEVELS)))
        if rng.random() < 0.1:
            plans.append(("judge", "judge.helpfulness", round(rng.uniform(1, 10), 2), ""))
        for kind, name, value, label in plans:
            delay_ns = int(
                rng.choice((5, 60, 3600, 86_400, 20 * 86_400)) * rng.uniform(0.5, 1.5) * 1e9
            )
            target = root_span_id if root_span_id and rng.random() < 0.1 else call.span_id
            explanation = "The answer missed the refund policy" if name == "comment" else ""
            self.pending_feedback.append(
                (
                    call.start_ns + delay_ns,
                    call,
                    target,
                    {
                        "kind": kind,
                        "name": name,
                        "value": value,
                        "label": label,
                        "explanation": explanation,
                    },
                )
            )

    def emit_feedback(self) -> None:
        """Feedback spans in the order they arrive, each in its call's trace."""
        for timestamp_ns, call, target, signal in sorted(
            self.pending_feedback, key=lambda item: item[0]
        ):
            recorded = emit(
                self.tracer,
                Target(int(call.trace_id, 16), int(target, 16)),
                signal["name"],
                signal["value"],
                label=signal["label"] or None,
                comment=signal["explanation"] or None,
                kind=signal["kind"],
                source="traffic-generator",
                timestamp_ns=timestamp_ns,
            )
            if recorded is None:
                raise RuntimeError("the generator's tracer provider must record spans")
            self.traffic.feedback.append(
                Feedback(
                    call.trace_id,
                    recorded.span_id,
                    target,
                    call,
                    timestamp_ns,
                    signal["kind"],
                    signal["name"],
                    signal["value"],
                    signal["label"],
                    signal["explanation"],
                    "traffic-generator",
                )
            )


def generate_traffic(
    requests: int = 1000,
    *,
    seed: int = 7,
    days: int = 7,
    users: int = 200,
    end_ns: int | None = None,
    settings: InstrumentationSettings | None = None,
) -> Traffic:
    """``requests`` app requests (1-3 generations each) over the ``days`` days before
    ``end_ns`` (default: today's midnight UTC, so data is recent enough for every TTL),
    with feedback arriving up to three weeks later. ``settings`` are the instrumentation's
    (default: its defaults, with a user-hash key from the seed): who counts as a new user,
    how users are hashed and counted, and prices all come from them, as in an app."""
    if end_ns is None:
        end_ns = time.time_ns() // DAY_NS * DAY_NS
    if settings is None:
        settings = InstrumentationSettings(hasher=UserHasher(f"traffic-{seed}"))
    generator = _Generator(seed, days, users, end_ns - days * DAY_NS, settings)
    for index in range(requests):
        for call, root_span_id in generator.request(index, requests):
            if not call.is_error:
                generator.feedback_for(call, root_span_id)
    generator.emit_feedback()
    generator.traffic.spans = list(generator.exporter.get_finished_spans())
    return generator.traffic


def batches(spans: list[ReadableSpan], size: int) -> Iterator[list[ReadableSpan]]:
    """Spans in export-sized batches, as a BatchSpanProcessor would hand them over."""
    for start in range(0, len(spans), size):
        yield spans[start : start + size]
