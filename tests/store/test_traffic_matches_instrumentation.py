"""The generated traffic is what closedloop's instrumentation writes, key for key.

``tests/_support/traffic.py`` builds its spans with the OTel SDK, because the real path
cannot put calls on past days or give them chosen latencies. Here every kind of call and
feedback it generates is made for real, with the same inputs (openai SDK -> local server
-> closedloop's instrumentor; feedback through ``closedloop.feedback.record``), and both
must agree on span name, kind, status, attribute keys and value types, events, and the
JSON shape of captured content. A new attribute in the instrumentation fails this test
until the generator writes it too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id

import closedloop
import closedloop.feedback as fb
from _support.traffic import Call, Feedback, Traffic, generate_traffic
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation._settings import InstrumentationSettings
from closedloop.privacy import UserHasher

CONTENT = (attr.SYSTEM_INSTRUCTIONS, attr.INPUT_MESSAGES, attr.OUTPUT_MESSAGES)
QUESTION = [{"role": "user", "content": "Question 12 about order 3456"}]


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate_traffic(400, seed=4, days=1)


def value_type(value: Any) -> str:
    if isinstance(value, tuple):
        return f"tuple[{'|'.join(sorted({type(item).__name__ for item in value}))}]"
    return type(value).__name__


def json_shape(value: Any) -> Any:
    """The structure of a JSON value, with each leaf replaced by its type."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [json_shape(item) for item in value[:1]]
    return type(value).__name__


def shape(span: ReadableSpan) -> dict[str, Any]:
    """What a span says, without its values."""
    attributes = span.attributes or {}
    return {
        "name": span.name.split(" ")[0],
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "parented": span.parent is not None,
        "attributes": {key: value_type(value) for key, value in sorted(attributes.items())},
        "content": {
            key: json_shape(json.loads(str(attributes[key])))
            for key in CONTENT
            if key in attributes
        },
        "events": sorted(
            (event.name, sorted((k, value_type(v)) for k, v in (event.attributes or {}).items()))
            for event in span.events
        ),
    }


def call_kind(call: Call) -> tuple[Any, ...]:
    """The inputs that decide which attributes a call's span has."""
    return (call.operation, call.model, call.stream, call.is_error, call.shadow,
            call.temperature is not None)  # fmt: skip


def feedback_kind(item: Feedback) -> tuple[Any, ...]:
    on_call = item.target_span_id == item.call.span_id
    return (item.kind, item.name, item.value is not None, bool(item.label),
            bool(item.explanation), on_call)  # fmt: skip


def generated_shapes(traffic: Traffic, kinds: dict[str, tuple[Any, ...]]) -> dict[Any, Any]:
    """Kind -> the one shape every generated span of that kind has."""
    shapes: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for span in traffic.spans:
        kind = kinds.get(format_span_id(span.context.span_id))
        if kind is not None:
            shapes[kind].append(shape(span))
    for kind, found in shapes.items():
        assert all(item == found[0] for item in found), f"{kind}: the generator is not uniform"
    return {kind: found[0] for kind, found in shapes.items()}


def real_call(client: openai.OpenAI, tracer: Any, call: Call) -> None:
    """``call``'s inputs through the openai SDK, inside the app's request span."""
    context: dict[str, Any] = {
        "user_id": "user-1",
        "prompt_name": call.prompt_name,
        "prompt_version": call.prompt_version,
        "conversation_id": call.conversation_id,
        "turn": call.turn,
    }
    if call.shadow:
        context["shadow"] = True
    with tracer.start_as_current_span("handle_request"), closedloop.context(**context):
        if call.operation == "embeddings":
            client.embeddings.create(model=call.model, input="refund policy")
            return
        request: dict[str, Any] = {
            "model": "error-429" if call.is_error else call.model,
            "messages": QUESTION,
            "stream": call.stream,
        }
        if call.temperature is not None:
            request["temperature"] = call.temperature
        try:
            response = client.chat.completions.create(**request)
            if call.stream:
                for _ in response:
                    pass
        except openai.RateLimitError:
            pass


def test_generated_calls_carry_what_real_calls_carry(
    traffic, server, exporter, provider, instrument
):
    instrument()
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    tracer = provider.get_tracer("app")
    kinds = {call.span_id: call_kind(call) for call in traffic.calls}
    generated = generated_shapes(traffic, kinds)
    assert {kind[0] for kind in generated} == {"chat", "embeddings"}
    assert {(kind[2], kind[3], kind[4]) for kind in generated} >= {
        (True, False, False),
        (False, True, False),
        (False, False, True),
    }  # fmt: skip  (streams, errors, shadow calls)
    examples = {call_kind(call): call for call in traffic.calls}
    for kind, expected in generated.items():
        exporter.clear()
        real_call(client, tracer, examples[kind])
        [span] = [s for s in exporter.get_finished_spans() if s.name != "handle_request"]
        assert shape(span) == expected, kind


def test_generated_feedback_carries_what_recorded_feedback_carries(
    traffic, server, exporter, provider, instrument
):
    instrument()
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    tracer = provider.get_tracer("app")
    kinds = {item.span_id: feedback_kind(item) for item in traffic.feedback}
    generated = generated_shapes(traffic, kinds)
    assert {kind[0] for kind in generated} == {"explicit", "implicit", "outcome", "judge"}
    assert {kind[5] for kind in generated} == {True, False}  # on the call, on its request
    with tracer.start_as_current_span("handle_request") as request:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    [call] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    trace_id = format_trace_id(call.context.trace_id)
    examples = {feedback_kind(item): item for item in traffic.feedback}
    for kind, expected in generated.items():
        item = examples[kind]
        target_span = call.context if kind[5] else request.get_span_context()
        exporter.clear()
        fb.record(
            f"{trace_id}:{format_span_id(target_span.span_id)}",
            item.name,
            item.value,
            label=item.label or None,
            comment=item.explanation or None,
            kind=item.kind,
            source=item.source,
        )
        [span] = exporter.get_finished_spans()
        assert span.parent is not None and span.parent.span_id == target_span.span_id
        assert shape(span) == expected, kind


def test_who_is_new_comes_from_the_instrumentation_settings():
    settings = InstrumentationSettings(hasher=UserHasher("k"), new_user_interactions=2)
    traffic = generate_traffic(60, seed=2, days=1, users=5, settings=settings)
    seen = [
        (span.attributes[attr.USER_INTERACTION], span.attributes[attr.USER_NEW])
        for span in traffic.spans
        if span.attributes and attr.USER_INTERACTION in span.attributes
    ]
    assert {interaction <= 2 for interaction, _ in seen} == {True, False}
    assert all(new == (interaction <= 2) for interaction, new in seen)
    assert settings.interactions.increment(traffic.calls[0].user_hash) > 2  # its counter
