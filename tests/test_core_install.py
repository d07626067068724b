"""The core install: ``pip install closedloop`` traces calls without any extra, and each
extra's absence is an error that names the install to run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
EXTRA_PACKAGES = (
    "chdb",
    "clickhouse-connect",
    "orjson",
    "google-re2",
    "PyYAML",
    "rapidfuzz",
    "typer",
)

CORE_SCRIPT = textwrap.dedent(
    """
    import json
    import closedloop, closedloop.feedback as fb
    from closedloop._extras import MissingExtraError
    from closedloop.testing import OpenAICompatibleServer
    from openai import OpenAI
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    closedloop.instrument(service_name="core", exporter=exporter, user_hash_key="k")
    with OpenAICompatibleServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        with closedloop.context(user_id="u1", prompt_name="p", prompt_version="v1"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "mail a@b.example"}]
            )
            fb.thumbs(closedloop.current_trace_id(), up=True)
    closedloop.uninstrument()
    missing = {}
    for name, use in {
        "store": lambda: __import__("closedloop.store").store.connect("chdb:///tmp/x"),
        "sampling": lambda: __import__("closedloop.sampling"),
        "implicit": lambda: fb.edit_ratio("a", "b"),
        "cli": lambda: __import__("closedloop.cli"),
    }.items():
        try:
            use()
        except MissingExtraError as error:
            missing[name] = str(error)
    spans = {span.name: dict(span.attributes) for span in exporter.get_finished_spans()}
    print(json.dumps({"spans": sorted(spans), "input": spans["chat gpt-4o-mini"].get(
        "gen_ai.input.messages"), "missing": missing}))
    """
)


def test_the_core_runs_without_extras(tmp_path):
    venv = tmp_path / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(PROJECT)], check=True, timeout=600
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.lower()
    for package in EXTRA_PACKAGES:
        assert f"{package.lower()}==" not in installed, package
    result = subprocess.run(
        [str(python), "-c", CORE_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={"CLOSEDLOOP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert report["spans"] == ["chat gpt-4o-mini", "closedloop.feedback"]
    assert "<EMAIL>" in report["input"]
    for extra in ("store", "sampling", "implicit", "cli"):
        assert f"pip install 'closedloop[{extra}]'" in report["missing"][extra], report
