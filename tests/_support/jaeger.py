"""Run Jaeger v2 (built by `make jaeger`) with jaeger/config.yaml in tests, and read traces
back through its stable query API (api_v3)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _support.collector import free_port
from _support.tools import missing
from _support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
JAEGER = ROOT / ".build" / "jaeger"
JAEGER_CONFIG = ROOT / "jaeger" / "config.yaml"


def jaeger_binary() -> Path:
    """The built Jaeger; skip (or fail under CLOSEDLOOP_REQUIRE_JAEGER=1) without it."""
    if JAEGER.exists():
        return JAEGER
    missing(
        f"{JAEGER} is missing: build it with `make jaeger` (needs Go)",
        "CLOSEDLOOP_REQUIRE_JAEGER",
    )


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger's loopback ports."""

    otlp_grpc_port: int
    query_port: int
    health_port: int

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    def healthy(self) -> bool:
        """Its health check says every component is up (503 while starting)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/status", timeout=2
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans Jaeger holds for ``trace_id`` (32 hex digits); none when it has none
        (api_v3 answers 404 "No traces found" then)."""
        url = f"http://127.0.0.1:{self.query_port}/api/v3/traces/{trace_id}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise
        return otlp_spans(body["result"])

    def trace_ids(self, service: str, since: datetime.datetime, limit: int = 100) -> set[str]:
        """Ids of the traces of ``service`` that started after ``since``, as Jaeger's search
        finds them (the in-memory store needs a search depth, ``limit``)."""
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
        query = urllib.parse.urlencode({
            "query.service_name": service,
            "query.start_time_min": since.isoformat(),
            "query.start_time_max": until.isoformat(),
            "query.num_traces": limit,
        })  # fmt: skip
        url = f"http://127.0.0.1:{self.query_port}/api/v3/traces?{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return set()
            raise
        return {span["traceId"] for span in otlp_spans(body["result"])}


def otlp_spans(traces_data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span of an OTLP JSON TracesData (api_v3 puts one under ``result``)."""
    return [
        span
        for resource_spans in traces_data.get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]


@contextlib.contextmanager
def running_jaeger(workdir: Path, config: Path = JAEGER_CONFIG) -> Iterator[Jaeger]:
    """Start Jaeger on ``config`` with every endpoint on a free loopback port (through the
    config's own environment variables); stop it with SIGTERM. Its log goes to a file in
    ``workdir``, which a full pipe cannot block."""
    binary = jaeger_binary()
    jaeger = Jaeger(otlp_grpc_port=free_port(), query_port=free_port(), health_port=free_port())
    env = os.environ | {
        "JAEGER_OTLP_GRPC_ENDPOINT": jaeger.otlp_grpc_endpoint,
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{jaeger.query_port}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{jaeger.health_port}",
        "JAEGER_LOG_LEVEL": "warn",
    }
    log_path = workdir / f"jaeger-{jaeger.query_port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )

    def started() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"jaeger exited early: {log_path.read_text()}")
        return jaeger.healthy()

    try:
        wait_for(started, 60, "jaeger never reported healthy")
        yield jaeger
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
