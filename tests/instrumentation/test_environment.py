"""Environment switches, each read in a fresh process as an operator would set it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import json
    import closedloop
    from openai import OpenAI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from closedloop.testing import OpenAICompatibleServer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    closedloop.instrument(tracer_provider=provider, user_hash_key="k")
    with OpenAICompatibleServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "mail ann@example.com"}]
        )
    attributes = dict(exporter.get_finished_spans()[0].attributes)
    print(json.dumps({
        "captured": "gen_ai.input.messages" in attributes,
        "raw_email": "ann@example.com" in attributes.get("gen_ai.input.messages", ""),
    }))
    """
)
VARIABLES = (
    "CLOSEDLOOP_CAPTURE_CONTENT",
    "CLOSEDLOOP_REDACT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)


def run_probe(tmp_path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(environment, CLOSEDLOOP_HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def probe(tmp_path, **environment: str) -> dict[str, bool]:
    result = run_probe(tmp_path, **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("environment", "captured", "raw_email"),
    [
        ({}, True, False),
        ({"CLOSEDLOOP_CAPTURE_CONTENT": "false"}, False, False),
        ({"CLOSEDLOOP_CAPTURE_CONTENT": "true"}, True, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, False, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, False, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"}, True, False),
        (
            {
                "CLOSEDLOOP_CAPTURE_CONTENT": "true",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false",
            },
            True,
            False,
        ),
        ({"CLOSEDLOOP_REDACT": "false"}, True, True),
        ({"CLOSEDLOOP_REDACT": "true"}, True, False),
    ],
)
def test_environment_switches_reach_instrument(tmp_path, environment, captured, raw_email):
    assert probe(tmp_path, **environment) == {"captured": captured, "raw_email": raw_email}


def test_an_unreadable_switch_is_a_clear_error(tmp_path):
    result = run_probe(tmp_path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="y")
    assert result.returncode != 0
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT='y' is not understood" in (
        result.stderr
    )
