"""Seeded, realistic LLM traffic as real OTel spans, with the truth kept alongside.

Tests and benchmarks need data that looks like production: several prompts and
versions, models with their own latency and price, returning and new users, errors,
streams, multi-call traces, shadow calls, and feedback of every kind arriving seconds
to weeks late (sometimes changed, sometimes only by trace id). ``generate_traffic``
produces that through the OTel SDK (so spans are exactly what an app would export) and
returns the generated facts too, so results can be checked by independent computation.
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
from opentelemetry.trace import SpanKind, Status, StatusCode

from closedloop.cost import CostCalculator, TokenUsage
from closedloop.feedback.recorder import emit
from closedloop.feedback.targets import Target
from closedloop.instrumentation import attributes as attr
from closedloop.instrumentation.openai.content import to_json
from closedloop.instrumentation.users import LRUInteractionCounter
from closedloop.privacy import UserHasher

DAY_NS = 86_400 * 1_000_000_000
PROMPTS = {"support": ("v1", "v2", "v3"), "triage": ("v1", "v2")}
MODELS = {"gpt-4o-mini": 450.0, "gpt-4o": 900.0, "o3-mini": 1800.0}
SAFETY_LEVELS = ("none", "low", "medium", "high")


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
    """One generated LLM call: what its span says."""

    trace_id: str
    span_id: str
    start_ns: int
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


def _messages(role: str, text: str, **extra: str) -> str:
    """Content in the GenAI semantic-convention JSON shape, as the instrumentation writes it."""
    return to_json([{"role": role, "parts": [{"type": "text", "content": text}], **extra}])


def _hex_trace(span: Any) -> str:
    return trace.format_trace_id(span.get_span_context().trace_id)


def _hex_span(span: Any) -> str:
    return trace.format_span_id(span.get_span_context().span_id)


class _Generator:
    def __init__(self, seed: int, days: int, users: int, start_ns: int) -> None:
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
        self.hasher = UserHasher(f"traffic-{seed}")
        self.interactions = LRUInteractionCounter()
        self.costs = CostCalculator()
        self.traffic = Traffic()
        self.pending_feedback: list[tuple[int, Call, str, dict[str, Any]]] = []

    def user(self) -> str:
        return self.users[min(int(self.rng.paretovariate(1.2)) - 1, len(self.users) - 1)]

    def call(self, parent: Any, start_ns: int, shadow: bool, conversation: str, turn: int) -> Call:
        rng = self.rng
        prompt = rng.choice(list(PROMPTS))
        version = rng.choice(PROMPTS[prompt])
        model = rng.choice(list(MODELS))
        user_id = self.user()
        user_hash = self.hasher.hash(user_id)
        is_error = rng.random() < 0.04
        stream = rng.random() < 0.4
        slower = 1.0 + 0.15 * (PROMPTS[prompt].index(version))
        latency_ms = round(rng.lognormvariate(math.log(MODELS[model] * slower), 0.5), 3)
        ttft_s = (
            round(latency_ms / 1000 * rng.uniform(0.05, 0.3), 6)
            if stream and not is_error
            else None
        )
        input_tokens = int(rng.lognormvariate(6, 0.6)) + 10
        cached = input_tokens // 2 if rng.random() < 0.3 else 0
        output_tokens = 0 if is_error else int(rng.lognormvariate(5, 0.5)) + 1
        cost = (
            None
            if is_error
            else self.costs.cost_usd(
                "openai", model, TokenUsage(input_tokens, output_tokens, cached)
            )
        )
        question = f"Question {rng.randint(1, 10**6)} about order {rng.randint(1000, 9999)}"
        answer = "" if is_error else f"Answer for {question.lower()}"
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: "chat",
            attr.PROVIDER_NAME: "openai",
            attr.OPENAI_API_TYPE: "chat_completions",
            attr.REQUEST_MODEL: model,
            attr.REQUEST_STREAM: stream,
            attr.REQUEST_TEMPERATURE: rng.choice([0.0, 0.2, 0.7]),
            attr.PROMPT_NAME: prompt,
            attr.PROMPT_VERSION: version,
            attr.CONVERSATION_ID: conversation,
            attr.TURN: turn,
            attr.USER_HASH: user_hash,
            attr.LATENCY_MS: latency_ms,
            attr.INPUT_MESSAGES: _messages("user", question),
            attr.REDACTIONS: 0,
        }
        if shadow:
            attributes[attr.SHADOW] = True
        else:
            interaction = self.interactions.increment(user_hash)
            attributes[attr.USER_INTERACTION] = interaction
            attributes[attr.USER_NEW] = interaction <= 10
        if ttft_s is not None:
            attributes[attr.RESPONSE_TIME_TO_FIRST_CHUNK] = ttft_s
        if not is_error:
            attributes.update(
                {
                    attr.RESPONSE_MODEL: f"{model}-2024-07-18",
                    attr.RESPONSE_ID: f"chatcmpl-{rng.getrandbits(48):x}",
                    attr.RESPONSE_FINISH_REASONS: ["stop"],
                    attr.USAGE_INPUT_TOKENS: input_tokens,
                    attr.USAGE_OUTPUT_TOKENS: output_tokens,
                    attr.USAGE_CACHE_READ_INPUT_TOKENS: cached,
                    attr.OUTPUT_MESSAGES: _messages("assistant", answer, finish_reason="stop"),
                }
            )
            if cost is not None:
                attributes[attr.COST_USD] = cost
        else:
            attributes[attr.ERROR_TYPE] = "RateLimitError"
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            f"chat {model}",
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_ns,
        )
        if is_error:
            span.set_status(Status(StatusCode.ERROR, "RateLimitError: rate limited"))
        span.end(end_time=start_ns + int(latency_ms * 1_000_000))
        call = Call(
            _hex_trace(span),
            _hex_span(span),
            start_ns,
            prompt,
            version,
            model,
            latency_ms,
            ttft_s,
            input_tokens,
            output_tokens,
            cached,
            cost,
            is_error,
            shadow,
            user_hash,
            conversation,
            turn,
            attributes[attr.INPUT_MESSAGES],
            attributes.get(attr.OUTPUT_MESSAGES, ""),
        )
        self.traffic.calls.append(call)
        return call

    def request(self, index: int, calls: int) -> list[tuple[Call, str | None]]:
        """One app request: a root span with 1-3 LLM calls (some with a shadow call).

        Feedback may name the request span instead of the call only when the request made
        one user-facing call, so the truth stays unambiguous.
        """
        start_ns = self.start_ns + int(index / calls * self.days * DAY_NS)
        root = self.tracer.start_span("handle_request", kind=SpanKind.SERVER, start_time=start_ns)
        conversation = f"conv-{self.rng.randint(1, calls // 3 + 1)}"
        made = []
        for turn in range(1, self.rng.choice((1, 1, 1, 2, 3)) + 1):
            made.append(self.call(root, start_ns + turn * 1_000_000, False, conversation, turn))
        if self.rng.random() < 0.05:
            self.call(root, start_ns + 5_000_000, True, conversation, 1)
        root.end(end_time=start_ns + 10_000_000_000)
        root_span_id = _hex_span(root) if len(made) == 1 else None
        return [(call, root_span_id) for call in made]

    def feedback_for(self, call: Call, root_span_id: str | None) -> None:
        """Feedback for ``call``; with ``root_span_id`` some of it targets the request span."""
        rng = self.rng
        quality = {"v1": 0.55, "v2": 0.65, "v3": 0.75}[call.prompt_version]
        plans: list[tuple[str, str, float | None, str]] = []
        if rng.random() < 0.3:
            plans.append(("explicit", "thumbs", float(rng.random() < quality), ""))
            if rng.random() < 0.2:
                plans.append(("explicit", "thumbs", float(rng.random() < quality), ""))
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
) -> Traffic:
    """``requests`` app requests (1-3 LLM calls each) over the ``days`` days before
    ``end_ns`` (default: today's midnight UTC, so data is recent enough for every TTL),
    with feedback arriving up to three weeks later."""
    if end_ns is None:
        end_ns = time.time_ns() // DAY_NS * DAY_NS
    generator = _Generator(seed, days, users, end_ns - days * DAY_NS)
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
