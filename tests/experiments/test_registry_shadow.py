"""The registry and the shadow runner together, as an app uses them: the version routing
chose answers the user, and the prompt's shadow version gets the same input, rendered
with its own template, off the user's path, its span marked and linked to the call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _support.spans import client_for, llm_spans
from closedloop.experiments import PromptRegistry, ShadowRunner, ShadowVersion
from closedloop.testing import OpenAICompatibleServer

PROMPTS = Path(__file__).parent / "data" / "prompts"
VARIABLES = {"product": "Acme", "ticket": "I was charged twice"}


def test_a_selections_shadow_version_runs_off_the_users_path(
    instrumented, exporter: InMemorySpanExporter, server: OpenAICompatibleServer
) -> None:
    client = client_for(server)

    def call(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **parameters)

    registry = PromptRegistry(PROMPTS, poll_interval_s=None)
    with (
        ShadowRunner() as runner,
        registry.select("triage", unit="customer-7", variables=VARIABLES) as choice,
    ):
        reply = call(choice.messages, choice.model, dict(choice.parameters))
        assert runner.submit_for(choice, call) == 1
    assert runner.stats().completed == 1
    assert reply.choices[0].message.content

    (shadow,) = choice.shadows
    assert ShadowVersion.of(shadow).version == "v5"
    production_span, shadow_span = sorted(
        llm_spans(exporter), key=lambda span: bool(span.attributes.get("closedloop.shadow"))
    )
    assert production_span.attributes["gen_ai.prompt.version"] == choice.version
    assert shadow_span.attributes["closedloop.shadow"] is True
    assert shadow_span.attributes["gen_ai.prompt.name"] == "triage"
    assert shadow_span.attributes["gen_ai.prompt.version"] == "v5"
    assert shadow_span.attributes["closedloop.variant"] == "shadow"  # the status, not v5
    assert [link.context for link in shadow_span.links] == [production_span.context]
    requests = [request.json for request in server.requests]
    assert [r["model"] for r in requests] == [choice.model, "gpt-4.1-mini"]
    assert requests[1]["messages"][0]["content"] == "Classify this Acme ticket."
