"""Real openai clients for the local server, and the LLM spans a test's calls produced."""

from __future__ import annotations

from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from closedloop.testing import OpenAICompatibleServer


def client_for(server: OpenAICompatibleServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def async_client_for(server: OpenAICompatibleServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def llm_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s for s in exporter.get_finished_spans() if s.name.split(" ")[0] in ("chat", "embeddings")
    ]


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = llm_spans(exporter)
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]
