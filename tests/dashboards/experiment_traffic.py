"""An A/B experiment through the real instrumentation: the traffic generator makes no
spans with ``closedloop.experiment``/``closedloop.variant``, so the Experiments dashboard's
data comes from openai calls to the local OpenAI-compatible server inside
``closedloop.context(experiment=..., variant=...)`` and ``closedloop.feedback`` signals."""

from __future__ import annotations

import random

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import closedloop
import closedloop.feedback as fb
from _support.spans import client_for
from closedloop.testing import OpenAICompatibleServer

EXPERIMENT = "support-tone"
SERVICE = "support-bot"
PROMPT = "support"
BASELINE, CANDIDATE = "v2", "v3"
# Task success per arm: far enough apart that 150 calls each separate the Wilson intervals.
TASK_SUCCESS = {BASELINE: 0.45, CANDIDATE: 0.85}


def experiment_spans(calls_per_arm: int = 150, seed: int = 5) -> list[ReadableSpan]:
    """Alternating arms (an exact 50/50 split), each call with a task outcome and some
    thumbs, reopen and safety signals; the spans as the app's SDK finished them."""
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("support-app", "1.0")
    rng = random.Random(seed)
    with OpenAICompatibleServer() as server:
        closedloop.instrument(
            tracer_provider=provider, user_hash_key="dashboards", stream_usage="always"
        )
        try:
            client = client_for(server)
            for index in range(2 * calls_per_arm):
                arm = (BASELINE, CANDIDATE)[index % 2]
                with (
                    tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER),
                    closedloop.context(
                        user_id=f"user-{index % 60}",
                        prompt_name=PROMPT,
                        prompt_version=arm,
                        experiment=EXPERIMENT,
                        variant=arm,
                    ),
                ):
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"where is order {index}"}],
                    )
                call = fb.call_id(reply)
                fb.outcome(call, "task_succeeded", rng.random() < TASK_SUCCESS[arm])
                if rng.random() < 0.5:
                    fb.thumbs(call, up=rng.random() < TASK_SUCCESS[arm])
                if rng.random() < 0.3:
                    fb.outcome(call, "ticket_reopened", rng.random() < 0.3)
                if rng.random() < 0.2:
                    fb.safety(call, rng.choice(("none", "low", "medium", "high")))
        finally:
            closedloop.uninstrument()
    return list(spans.get_finished_spans())
