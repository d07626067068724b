"""closedloop in one screen: real openai calls, traced, against a local server.

Runs without an API key: ``closedloop.testing`` serves an OpenAI-compatible API on
localhost. Swap ``base_url`` for the real one and nothing else changes.
"""

from __future__ import annotations

import contextlib
import json

import openai
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console
from rich.table import Table

import closedloop
from closedloop.testing import OpenAICompatibleServer

console = Console(width=130)


def run_calls(client: openai.OpenAI) -> str | None:
    """A few typical calls of a support bot; returns the trace id to attach feedback to."""
    with closedloop.context(
        user_id="customer-1138",
        conversation_id="conv-42",
        turn=1,
        prompt_name="support",
        prompt_version="v3",
    ):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You are a concise support assistant."},
                {"role": "user", "content": "Refund for order 1234? Reach me at ann@example.com"},
            ],
        )
        trace_id = closedloop.current_trace_id()
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "And how long does shipping take?"}],
            stream=True,
        )
        for _ in stream:
            pass
        client.responses.create(model="gpt-4o", input="Summarise the refund policy.")
        client.embeddings.create(model="text-embedding-3-small", input="refund policy")
        with contextlib.suppress(openai.RateLimitError):
            client.chat.completions.create(
                model="error-429", messages=[{"role": "user", "content": "hi"}]
            )
    return trace_id


def show(exporter: InMemorySpanExporter, trace_id: str | None) -> None:
    table = Table(title="LLM spans")
    for column in (
        "span",
        "prompt",
        "tokens in/out",
        "cost USD",
        "latency ms",
        "TTFT ms",
        "new user",
        "error",
    ):
        table.add_column(column)
    spans = exporter.get_finished_spans()
    for span in spans:
        a = span.attributes
        ttft = a.get("gen_ai.response.time_to_first_chunk")
        cost = a.get("closedloop.cost.usd")
        table.add_row(
            span.name,
            f"{a.get('gen_ai.prompt.name', '')} {a.get('gen_ai.prompt.version', '')}",
            f"{a.get('gen_ai.usage.input_tokens', '-')}/{a.get('gen_ai.usage.output_tokens', '-')}",
            f"{cost:.3g}" if cost is not None else "-",
            f"{a['closedloop.latency.ms']:.1f}",
            f"{ttft * 1000:.1f}" if ttft is not None else "-",
            str(a.get("closedloop.user.new", "-")),
            a.get("error.type", ""),
        )
    console.print(table)
    first = spans[0].attributes
    console.print("Redacted input of the first call:")
    console.print_json(first["gen_ai.input.messages"])
    console.print(f"user.hash = {first['user.hash'][:16]}… (HMAC, never the raw id)")
    console.print(f"Trace id to attach feedback to later: [bold]{trace_id}[/]")
    console.print(json.dumps(closedloop.stats()))


def main() -> None:
    exporter = InMemorySpanExporter()
    # The local server honours stream_options like OpenAI does, so closedloop may ask it for
    # a stream's usage ("auto" asks only OpenAI and Azure OpenAI hosts).
    provider = closedloop.instrument(
        service_name="quickstart", exporter=exporter, stream_usage="always"
    )
    with OpenAICompatibleServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        trace_id = run_calls(client)
    provider.force_flush()
    show(exporter, trace_id)


if __name__ == "__main__":
    main()
