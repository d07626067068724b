"""Storage speed and size, on the embedded chDB engine.

Prints, in one run:
  * spans/s through ClickHouseSpanExporter into chDB (realistic generated traffic, with
    content), next to the raw store insert of the same rows (the exporter's baseline);
  * query time of prompt_version_metrics over 1M and 10M LLM calls, and of the core
    metrics from the typed llm_calls table vs. parsing otel_traces_recent attribute maps;
  * bytes stored per span (otel_traces) and per call (llm_calls).
Run: ``.venv/bin/python benchmarks/store_throughput.py [--sizes 1000000,10000000]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from string import Template

from rich.console import Console
from rich.table import Table

import closedloop.store as cs
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._rows import span_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# the tests' traffic generator, not a copy of it
from _support.traffic import batches, generate_traffic

SQL = Path(__file__).with_name("sql")
console = Console(width=120)


def sql(name: str, **values: object) -> str:
    return Template((SQL / name).read_text()).substitute(database="closedloop", **values)


def timed(action, repeat: int = 1) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def exporter_throughput(workdir: Path, requests: int) -> tuple[int, float, float, float]:
    """The same spans twice into fresh stores: direct inserts, then through the exporter,
    both writing both tiers (the exporter's default)."""
    spans = generate_traffic(requests, seed=5).spans
    tiers = ("otel_traces_recent", "otel_traces")
    with cs.connect(f"chdb://{workdir}/direct") as store:
        direct = timed(
            lambda: [
                store.insert_rows(tier, span_rows(b)) for b in batches(spans, 512) for tier in tiers
            ]
        )
    with cs.connect(f"chdb://{workdir}/exporter") as store:
        exporter = ClickHouseSpanExporter(store, spool_dir=workdir / "spool")
        started = time.perf_counter()
        for batch in batches(spans, 512):
            exporter.export(batch)
        exporter.force_flush(timeout_millis=600_000)
        through_exporter = time.perf_counter() - started
        exporter.shutdown()
        bytes_per_span = store.query(
            "SELECT sum(bytes_on_disk) / sum(rows) AS b FROM system.parts "
            "WHERE database = 'closedloop' AND table = 'otel_traces' AND active"
        )[0]["b"]
    return len(spans), through_exporter, direct, bytes_per_span


def query_times(workdir: Path, rows: int) -> dict[str, float]:
    store = cs.connect(f"chdb://{workdir}/calls-{rows}")
    try:
        load = timed(
            lambda: [
                store.execute(s) for s in sql("synthetic_llm_spans.sql", rows=rows).split(";\n\n")
            ]
        )
        result = {
            "load_s": load,
            "view_s": timed(
                lambda: store.query("SELECT * FROM closedloop.prompt_version_metrics"), 3
            ),
            "typed_s": timed(lambda: store.execute(sql("core_metrics_typed.sql")), 3),
            "maps_s": timed(lambda: store.execute(sql("core_metrics_from_maps.sql")), 3),
        }
        sizes = store.query(
            "SELECT table, sum(bytes_on_disk) / sum(rows) AS b FROM system.parts "
            "WHERE database = 'closedloop' AND active GROUP BY table"
        )
        result["bytes_per_call"] = next(r["b"] for r in sizes if r["table"] == "llm_calls")
        return result
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000", help="LLM calls per query run")
    parser.add_argument("--requests", type=int, default=4000, help="generated app requests")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-bench-"))
    try:
        spans, exporter_s, raw_s, bytes_per_span = exporter_throughput(workdir, args.requests)
        table = Table(title=f"Ingest: {spans} generated spans (with content) into chDB")
        for column in ("path", "spans/s", "seconds"):
            table.add_column(column, justify="right")
        table.add_row("store.insert_rows (baseline)", f"{spans / raw_s:,.0f}", f"{raw_s:.2f}")
        table.add_row("ClickHouseSpanExporter", f"{spans / exporter_s:,.0f}", f"{exporter_s:.2f}")
        console.print(table)
        console.print(
            f"otel_traces bytes on disk per span (realistic, with content): {bytes_per_span:,.0f}"
        )
        table = Table(title="Query time (median of 3), seconds")
        for column in (
            "LLM calls",
            "load",
            "prompt_version_metrics",
            "core metrics: typed llm_calls",
            "core metrics: parsing maps",
            "speed-up",
            "llm_calls bytes/call",
        ):
            table.add_column(column, justify="right")
        for rows in (int(size) for size in args.sizes.split(",")):
            r = query_times(workdir, rows)
            speed_up = r["maps_s"] / r["typed_s"]
            table.add_row(
                f"{rows:,}", f"{r['load_s']:.1f}", f"{r['view_s']:.2f}", f"{r['typed_s']:.2f}",
                f"{r['maps_s']:.2f}", f"{speed_up:.1f}x", f"{r['bytes_per_call']:.0f}",
            )  # fmt: skip
            console.print(table)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
