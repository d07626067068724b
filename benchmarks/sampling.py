"""Tail sampling speed and memory: closedloop's sampler next to the real collector.

The same generated traffic (calls, errors, new users, feedback) goes to both:
  * closedloop.sampling.TailSampler in this process: ingest + decide, spans/s, and the
    peak memory its state allocates (tracemalloc);
  * the collector built by ``make collector`` with the production policies: OTLP/HTTP
    payloads encoded beforehand, then posted as fast as it accepts them; spans/s of
    ingestion and the process's peak resident memory (VmHWM).
Run: ``.venv/bin/python benchmarks/sampling.py [--requests 8000]``.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from rich.console import Console
from rich.table import Table

from closedloop.sampling import SpanView, TailSampler, load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# the tests' traffic generator and collector harness are shared, not duplicated
from _support.collector import (  # noqa: E402
    PRODUCTION_CONFIG,
    free_port,
    running_collector,
    sampling_config,
)
from _support.traffic import batches, generate_traffic  # noqa: E402


def _run_sampler(spans: list[ReadableSpan]) -> int:
    kept: list[SpanView] = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept.extend)
    for batch in batches(spans, 512):
        sampler.ingest(SpanView.of(span) for span in batch)
    sampler.drain()
    return len(kept)


def python_sampler(spans: list[ReadableSpan]) -> tuple[float, int, int]:
    """Seconds to ingest (span views included) and decide everything; peak bytes allocated
    meanwhile, measured in a second run (tracemalloc slows Python down); kept spans."""
    started = time.perf_counter()
    kept = _run_sampler(spans)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    _run_sampler(spans)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, kept


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def collector(spans: list[ReadableSpan], workdir: Path) -> tuple[float, int]:
    """Seconds for the collector to accept every payload, and its peak RSS."""
    payloads = [encode_spans(batch).SerializeToString() for batch in batches(spans, 512)]
    http_port, grpc_port = free_port(), free_port()
    config = sampling_config(workdir / "kept.jsonl", http_port=http_port, grpc_port=grpc_port)
    with running_collector(config, workdir, http_port) as process:
        connection = http.client.HTTPConnection("127.0.0.1", http_port)
        started = time.perf_counter()
        for payload in payloads:
            connection.request(
                "POST", "/v1/traces", payload, {"Content-Type": "application/x-protobuf"}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        seconds = time.perf_counter() - started
        time.sleep(2.5)
        peak = peak_rss_bytes(process.pid)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8000, help="generated app requests")
    args = parser.parse_args()
    spans = generate_traffic(args.requests, seed=17, days=1).spans
    traces = len({span.context.trace_id for span in spans})
    py_seconds, py_peak, kept = python_sampler(spans)
    with tempfile.TemporaryDirectory(prefix="closedloop-sampling-") as workdir:
        col_seconds, col_peak = collector(spans, Path(workdir))
    table = Table(
        title=f"Tail sampling {len(spans):,} spans in {traces:,} traces (production policies)"
    )
    for column in ("sampler", "spans/s", "seconds", "peak memory"):
        table.add_column(column, justify="right")
    table.add_row(
        "collector (baseline): ingest", f"{len(spans) / col_seconds:,.0f}", f"{col_seconds:.2f}",
        f"{col_peak / 2**20:,.0f} MiB RSS",
    )  # fmt: skip
    table.add_row(
        "closedloop TailSampler: ingest + decide", f"{len(spans) / py_seconds:,.0f}",
        f"{py_seconds:.2f}", f"{py_peak / 2**20:,.1f} MiB allocated",
    )  # fmt: skip
    console = Console(width=120)
    console.print(table)
    console.print(f"closedloop kept {kept:,} of {len(spans):,} spans")


if __name__ == "__main__":
    main()
