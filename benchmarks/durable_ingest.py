"""ClickHouseSpanExporter ingest, durable acknowledgements next to the default.

Prints, in one run on the same generated traffic (realistic spans, with content), the
spans/s from the first ``export()`` until every span is in both tiers of a fresh chDB
store, with ``--callers`` threads exporting ``--batch``-span batches at once (as a
server's request handlers do): by default ``export()`` returns once the batch is in
memory; with ``durable=True`` once it is inserted or spooled (fsynced).
Run: ``.venv/bin/python benchmarks/durable_ingest.py [--requests 4000 --callers 8]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from rich.console import Console
from rich.table import Table

import closedloop.store as cs
from closedloop.store._exporter import ClickHouseSpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# the tests' traffic generator, not a copy of it
from _support.traffic import batches, generate_traffic


def ingest(workdir: Path, parts: list[list[ReadableSpan]], callers: int, durable: bool) -> float:
    """Seconds to export ``parts`` from ``callers`` threads into a fresh store, until
    every span is stored."""
    name = "durable" if durable else "default"
    with cs.connect(f"chdb://{workdir}/{name}") as store:
        exporter = ClickHouseSpanExporter(
            store, spool_dir=workdir / f"spool-{name}", durable=durable
        )
        refused = []

        def export(first: int) -> None:
            for part in parts[first::callers]:
                if exporter.export(part) is not SpanExportResult.SUCCESS:
                    refused.append(part)

        threads = [threading.Thread(target=export, args=(n,)) for n in range(callers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert exporter.force_flush(timeout_millis=600_000)
        elapsed = time.perf_counter() - started
        exporter.shutdown()
        assert not refused, f"{len(refused)} batches refused"
        rows = store.query("SELECT count() AS n FROM closedloop.otel_traces")[0]["n"]
        assert rows == sum(len(part) for part in parts), rows
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000, help="generated app requests")
    parser.add_argument("--callers", type=int, default=8, help="threads calling export()")
    parser.add_argument("--batch", type=int, default=256, help="spans per export() call")
    args = parser.parse_args()
    spans = generate_traffic(args.requests, seed=5).spans
    parts = list(batches(spans, args.batch))
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-bench-"))
    try:
        table = Table(
            title=f"{len(spans):,} spans in {len(parts)} batches of {args.batch} from "
            f"{args.callers} threads, both tiers, chDB, {os.cpu_count()} cores"
        )
        for column in ("acknowledgement", "spans/s", "seconds"):
            table.add_column(column, justify="right")
        for durable in (False, True):
            seconds = ingest(workdir, parts, args.callers, durable)
            label = "durable=True (inserted or fsynced)" if durable else "default (in memory)"
            table.add_row(label, f"{len(spans) / seconds:,.0f}", f"{seconds:.2f}")
        Console(width=120).print(table)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
