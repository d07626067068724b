"""The collector configs docker-compose runs start, as shipped, in the built collector.

Their validation is tests/sampling/test_collector_equivalence.py's. Here each one runs with
the compose variables unset (CLICKHOUSE_*, JAEGER_OTLP_ENDPOINT), so its exporters aim at
the compose services `clickhouse`, `jaeger` and `tail-sampler-N`, none of which exist
here: that is the point. The ClickHouse exporter does not connect when it starts (with
create_schema false it only builds a lazy client: clickhouseexporter v0.161.0
exporter_traces.go start, clickhouse-go v2 Open), nor do the OTLP exporters (gRPC clients
dial lazily), so a start that fails means the config or the build is broken, not a missing
server. Two things are set besides: the receivers listen on free loopback ports (through
the configs' own OTLP_*_ENDPOINT variables; 4317 and 4318 may be taken on a shared
machine), and the collector's own metrics are off (they would bind the fixed port 8888).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from _support.collector import LB_CONFIG, PRODUCTION_CONFIG, collector_binary, free_port
from _support.waiting import wait_for

COMPOSE_VARIABLES = {
    "CLICKHOUSE_ENDPOINT",
    "CLICKHOUSE_USER",
    "CLICKHOUSE_PASSWORD",
    "JAEGER_OTLP_ENDPOINT",
}
READY = "Everything is ready. Begin running and processing data."


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def accepts_otlp(http_port: int) -> bool:
    """The OTLP/HTTP receiver answers an (empty) export: the pipeline behind it runs."""
    accepted = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/v1/traces",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(accepted, timeout=10) as response:
        return bool(response.status == 200)


@pytest.mark.parametrize("config", [PRODUCTION_CONFIG, LB_CONFIG], ids=["tail-sampling", "lb"])
def test_shipped_config_starts(config: Path, tmp_path: Path) -> None:
    binary = collector_binary()
    grpc_port, http_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in COMPOSE_VARIABLES}
    env |= {
        "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
    }
    log_path = tmp_path / "collector.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(binary), "--config", str(config), "--set=service.telemetry.metrics.level=none"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )

    def ready() -> bool:
        assert process.poll() is None, f"collector exited: {log_path.read_text()}"
        return READY in log_path.read_text()

    try:
        wait_for(ready, 60, "the collector never said it was ready")
        assert listening(grpc_port) and accepts_otlp(http_port)
        assert process.poll() is None, log_path.read_text()
    finally:
        # Its exit status is not checked: otelcol v0.161.0 logs "ready" before it installs
        # its SIGTERM handler (collector.go Run), so an early SIGTERM may kill it outright.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
