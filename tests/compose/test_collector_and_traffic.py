"""What compose runs, run here without Docker: the real collector binary (built by
`make collector` from the same manifest as collector/Dockerfile) on the shared configs with
the environment compose gives it, probed by compose's own healthcheck command; and the demo
profile's traffic script, sending real instrumented openai calls and feedback to
``closedloop serve`` over OTLP/HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _support.collector import collector_binary, free_port, wait_for_port
from compose.checks import ROOT, healthcheck_command, load_compose, services
from server.serving import running

COMPOSE = load_compose()
TRAFFIC = ROOT / "examples" / "compose_traffic.py"


@pytest.mark.parametrize("config", ["otel-collector.yaml", "otel-collector-lb.yaml"])
def test_the_collector_accepts_the_mounted_configs(config: str, tmp_path: Path) -> None:
    binary = collector_binary()
    path = ROOT / "collector" / config
    result = subprocess.run(
        [str(binary), "validate", "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    broken = tmp_path / config
    broken.write_text(path.read_text().replace("processors: [memory_limiter", "processors: [nope"))
    result = subprocess.run(
        [str(binary), "validate", "--config", str(broken)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_the_healthcheck_passes_on_the_running_collector_and_fails_without_it() -> None:
    binary = collector_binary()
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed: cannot run compose's healthcheck command")
    service = services(COMPOSE)["collector"]
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        **service["environment"],
        "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
    }
    # compose's command line, on this port; the container's busybox wget takes these flags too
    probe = [part.replace(":4318/", f":{http_port}/") for part in healthcheck_command(service)]
    config = ROOT / "collector" / "otel-collector.yaml"
    process = subprocess.Popen(
        [str(binary), "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(http_port, process)
        healthy = subprocess.run(probe, check=False, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert subprocess.run(probe, check=False, capture_output=True, timeout=30).returncode != 0


def test_demo_traffic_reaches_serve_with_feedback(tmp_path: Path) -> None:
    with running(tmp_path) as serve:
        env = {
            **os.environ,
            "CLOSEDLOOP_OTLP_ENDPOINT": serve.url,
            "CLOSEDLOOP_DEMO_DURATION_S": "3",
            "CLOSEDLOOP_DEMO_RATE": "20",
            "CLOSEDLOOP_USER_HASH_KEY": "compose-test-key",
        }
        result = subprocess.run(
            [sys.executable, str(TRAFFIC)],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "done," in result.stderr
        assert serve.stop() == 0, serve.log.read_text()
    rows = serve.rows("otel_traces_recent", "TraceId, SpanName, ServiceName")
    calls = {row["TraceId"] for row in rows if row["SpanName"].startswith("chat ")}
    feedback = {row["TraceId"] for row in rows if row["SpanName"] == "closedloop.feedback"}
    assert len(calls) >= 10, rows
    assert feedback, "no feedback spans arrived"
    assert feedback <= calls
    assert {row["ServiceName"] for row in rows} == {"support-bot-demo"}
