"""Run the real OpenTelemetry Collector (built by `make collector`) in tests."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from _support.tools import missing
from _support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / ".build" / "otelcol-closedloop"
PRODUCTION_CONFIG = ROOT / "collector" / "otel-collector.yaml"
LB_CONFIG = ROOT / "collector" / "otel-collector-lb.yaml"


def collector_binary() -> Path:
    """The built collector; skip (or fail under CLOSEDLOOP_REQUIRE_COLLECTOR=1) without it."""
    if COLLECTOR.exists():
        return COLLECTOR
    missing(
        f"{COLLECTOR} is missing: build it with `make collector` (needs Go)",
        "CLOSEDLOOP_REQUIRE_COLLECTOR",
    )


def _ephemeral_ports() -> range:
    """The range the kernel hands out to outgoing connections and to bind(0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


_EPHEMERAL = _ephemeral_ports()
# Where the kernel's range covers them all, they are still better than bind(0)'s.
_PICKABLE = [port for port in range(10_000, 30_000) if port not in _EPHEMERAL] or [
    *range(10_000, 30_000)
]
_handed_out: set[int] = set()
_picker = random.Random()  # apart from the global one, which tests seed


def free_port() -> int:
    """A port nothing listens on, for a server a test starts later. Picked outside the
    ephemeral range and never twice in a run: a port from bind(0) is released before the
    server binds it, and any outgoing connection (Jaeger's, the collector's) may take it
    meanwhile."""
    for _ in range(200):
        port = _picker.choice(_PICKABLE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found outside the ephemeral range in 200 tries")


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the collector listens on ``port``; at once, with its stderr, if it exits."""

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"collector exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(listening, timeout, f"collector did not listen on {port}")


def sampling_config(
    output: Path,
    *,
    http_port: int,
    grpc_port: int,
    decision_wait: str = "1s",
    decision_cache: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The production tail_sampling policies, exporting to a file instead of ClickHouse;
    ``decision_cache`` replaces the production cache sizes (to test other sizings)."""
    production = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    tail_sampling = dict(production["processors"]["tail_sampling"], decision_wait=decision_wait)
    if decision_cache is not None:
        tail_sampling["decision_cache"] = decision_cache
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "http": {"endpoint": f"127.0.0.1:{http_port}"},
                    "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
                }
            }
        },
        "processors": {"tail_sampling": tail_sampling},
        "exporters": {"file": {"path": str(output), "flush_interval": "100ms"}},
        "service": {
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["tail_sampling"],
                    "exporters": ["file"],
                }
            },
        },
    }


@contextlib.contextmanager
def running_collector(
    config: dict[str, Any], workdir: Path, port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Start the collector on ``config``; stop it with SIGTERM (which flushes exporters).
    ``env`` adds environment variables, for the ``${env:...}`` references in ``config``."""
    binary = collector_binary()
    config_path = workdir / f"collector-{port}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [str(binary), "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else os.environ | dict(env),
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exported_spans(path: Path) -> set[tuple[str, str]]:
    """(trace id, span id) of every span the file exporter wrote."""
    kept: set[tuple[str, str]] = set()
    if not path.exists():
        return kept
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    kept.add((span["traceId"], span["spanId"]))
    return kept
