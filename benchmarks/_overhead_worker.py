"""One configuration of the overhead benchmark, timed in a process of its own.

A fresh process per configuration means no instrumentation can leave patches, caches or
garbage behind for the next one. Every configuration gets the same TracerProvider,
BatchSpanProcessor and exporter, so only the instrumentation differs. The exporter counts
what it receives: a configuration meant to trace that exported fewer spans than it made
calls fails the run, rather than looking free.
"""

from __future__ import annotations

import itertools
import string
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

import closedloop

CONFIGS = ("bare", "openai-v2", "closedloop", "closedloop-capture-off", "bare-span")
MODEL = "gpt-4o-mini"
# Every call sends this system prompt and a user message no other call sends, as an app
# does: closedloop redacts the system prompt once (the pipeline remembers recent texts), the
# user message and the answer on every call. The local server echoes the user message one
# word per chunk: 14 stream chunks.
SYSTEM = {"role": "system", "content": "You are a helpful support assistant for an online shop."}
QUESTION = "My parcel has not arrived yet, where is it? Order"
MESSAGES = [SYSTEM, {"role": "user", "content": f"{QUESTION} aaaa."}]
_turns = itertools.count()


def order_reference(number: int) -> str:
    """A word of letters per number (no digits: those would make redaction work harder)."""
    letters = []
    for _ in range(4):
        number, letter = divmod(number, 26)
        letters.append(string.ascii_lowercase[letter])
    return "".join(reversed(letters))


def turn() -> list[dict[str, str]]:
    """The next call's messages: the same system prompt, a user message never sent before."""
    return [SYSTEM, {"role": "user", "content": f"{QUESTION} {order_reference(next(_turns))}."}]


Call = Callable[[openai.OpenAI], None]


class CountingExporter(SpanExporter):
    """Exports nowhere, so the benchmark measures span work, not a backend; counts spans
    and their attributes, so a configuration that traces nothing is caught."""

    def __init__(self) -> None:
        self.spans = 0
        self.attributes = 0  # the most attributes seen on one span

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        for span in spans:
            self.attributes = max(self.attributes, len(span.attributes or {}))
        return SpanExportResult.SUCCESS


def plain_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=turn())


def stream_call(client: openai.OpenAI) -> None:
    for _ in client.chat.completions.create(model=MODEL, messages=turn(), stream=True):
        pass


KINDS: dict[str, Call] = {"plain": plain_call, "stream": stream_call}
# Every configuration's calls run in this closedloop context (closedloop hashes the user).
CONTEXT = {"user_id": "u-1", "prompt_name": "support", "prompt_version": "v1"}


def in_span(tracer: Tracer, call: Call, attributes: Mapping[str, Any]) -> Call:
    """The call inside one hand-written span with ``attributes``: the floor any OTel
    instrumentation recording them pays."""

    def run(client: openai.OpenAI) -> None:
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT) as span:
            call(client)
            for key, value in attributes.items():
                span.set_attribute(key, value)

    return run


def recorded_attributes(config: str, base_url: str) -> dict[str, dict[str, Any]]:
    """The attributes ``config`` puts on each kind of call's span. openai-v2 patches the SDK
    for good: record its attributes in a process of its own."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(config, provider, {})
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    attributes = {}
    try:
        with closedloop.context(**CONTEXT):
            for kind, call in KINDS.items():
                exporter.clear()
                call(client)
                (span,) = exporter.get_finished_spans()
                attributes[kind] = {
                    key: list(value) if isinstance(value, tuple) else value
                    for key, value in (span.attributes or {}).items()
                }
    finally:
        closedloop.uninstrument()
        provider.shutdown()
    return attributes


def capture_off_attributes(base_url: str) -> dict[str, dict[str, Any]]:
    """The attributes closedloop with content capture off puts on each kind of call's span:
    what the bare span carries, so the comparison is like for like."""
    return recorded_attributes("closedloop-capture-off", base_url)


def instrument(
    config: str, provider: TracerProvider, span_attributes: Mapping[str, Mapping[str, Any]]
) -> Callable[[str, Call], Call]:
    """Set up ``config``'s instrumentation with its defaults; returns how to wrap a call."""
    if config == "openai-v2":
        import httpx2

        # openai-v2 imports httpx, which openai 3.x replaced with httpx2: alias it first.
        httpx2.alias_httpx()
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif config in ("closedloop", "closedloop-capture-off"):
        closedloop.instrument(
            tracer_provider=provider,
            user_hash_key="bench",
            capture_content=config == "closedloop",
        )
    elif config == "bare-span":
        tracer = provider.get_tracer("benchmark")
        return lambda kind, call: in_span(tracer, call, span_attributes[kind])
    return lambda kind, call: call


def timed_calls(run: Call, client: openai.OpenAI, calls: int) -> tuple[list[float], list[float]]:
    """Seconds per call: wall time, and CPU time of this (the calling) thread."""
    wall, cpu = [], []
    for _ in range(calls):
        started, cpu_started = time.perf_counter(), time.thread_time()
        run(client)
        cpu.append(time.thread_time() - cpu_started)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def run_worker(
    config: str,
    base_url: str,
    calls: int,
    warmup: int,
    span_attributes: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Per-call seconds for each kind of call, after ``warmup`` untimed calls of it: wall
    time, and the CPU time of this (the calling) thread."""
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    wrap = instrument(config, provider, span_attributes)
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    result: dict[str, Any] = {"samples": {}, "cpu": {}, "attributes": {}}
    with closedloop.context(**CONTEXT):
        for kind, call in KINDS.items():
            run = wrap(kind, call)
            for _ in range(warmup):
                run(client)
            samples, cpu = timed_calls(run, client, calls)
            provider.force_flush()
            expected = 0 if config == "bare" else warmup + calls
            if exporter.spans != expected:
                raise SystemExit(
                    f"{config}, {kind} calls: {exporter.spans} spans exported for {expected} "
                    "expected; its instrumentation is not doing its work, so its time is wrong."
                )
            result["samples"][kind] = samples
            result["cpu"][kind] = cpu
            result["attributes"][kind] = exporter.attributes
            exporter.spans = exporter.attributes = 0
    provider.shutdown()
    return result
