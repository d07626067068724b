"""``opentelemetry-instrument python app.py`` picks closedloop up with no code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from _support.otlp_capture import otlp_capture

APP = textwrap.dedent(
    """
    import sys
    from openai import OpenAI

    client = OpenAI(base_url=sys.argv[1], api_key="test-key", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "mail bob@example.com"}]
    )
    print("APP-REPLY:", reply.choices[0].message.content, file=sys.stderr)
    """
)


def _spans_from_console(stdout: str) -> list[dict]:
    """The console exporter prints one pretty JSON object per span."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_opentelemetry_instrument_runs_the_openai_instrumentor(server, tmp_path: Path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    instrument_cli = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "auto-app",
        "CLOSEDLOOP_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [str(instrument_cli), sys.executable, str(app), server.base_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "APP-REPLY: Echo: mail bob@example.com" in result.stderr
    spans = [s for s in _spans_from_console(result.stdout) if s["name"] == "chat gpt-4o-mini"]
    assert len(spans) == 1
    span = spans[0]
    assert span["kind"] == "SpanKind.CLIENT"
    assert span["resource"]["attributes"]["service.name"] == "auto-app"
    attributes = span["attributes"]
    assert attributes["gen_ai.usage.output_tokens"] == len(["Echo:", "mail", "bob@example.com"])
    assert "<EMAIL>" in attributes["gen_ai.input.messages"]
    assert "bob@example.com" not in result.stdout


DEFAULT_PATH_APP = textwrap.dedent(
    """
    import sys
    import closedloop
    from openai import OpenAI

    provider = closedloop.instrument()
    client = OpenAI(base_url=sys.argv[1], api_key="test-key", max_retries=0)
    with closedloop.context(prompt_name="support", prompt_version="v2"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    provider.force_flush()
    """
)


def test_instrument_with_no_provider_exports_over_otlp_honouring_otel_variables(
    server, tmp_path: Path
):
    """The default path: closedloop creates the provider and the OTLP/HTTP exporter, and
    the standard OTEL_SERVICE_NAME and OTEL_EXPORTER_OTLP_ENDPOINT variables apply."""
    app = tmp_path / "app.py"
    app.write_text(DEFAULT_PATH_APP)
    with otlp_capture() as receiver:
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": "support-bot",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
            "CLOSEDLOOP_HOME": str(tmp_path),
        }
        result = subprocess.run(
            [sys.executable, str(app), server.base_url],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        spans = receiver.spans()
    [(resource, span)] = [(r, s) for r, s in spans if s.name == "chat gpt-4o-mini"]
    assert resource["service.name"] == "support-bot"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["gen_ai.prompt.version"].string_value == "v2"
    assert attributes["gen_ai.usage.input_tokens"].int_value > 0
