"""kill -9 of a process exporting with ``durable=True``: every span it acknowledged is
stored exactly once after a restart replays the spool, and no span is stored twice.

A child process owns the chDB store and exports a bounded stream of batches from several
threads (so exports share inserts and fsyncs), printing each batch's number once
``export()`` returned SUCCESS. The parent kills it at a moment drawn from the seed, opens
the store, lets a new exporter on the same spool replay, and counts every span by id in
both tiers and in ``llm_calls`` (filled by a materialized view). With a slow store (a view
that sleeps on each insert) exports wait long enough to be spooled while their insert is
still under way, so kills land between an insert and the removal of its spool file.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import closedloop.store as cs
from closedloop.store._exporter import ClickHouseSpanExporter
from store.exported import stored

BATCHES, SPANS_PER_BATCH, THREADS = 60, 20, 4
TABLES = ("otel_traces_recent", "otel_traces", "llm_calls")

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    import closedloop.store as cs

    url, spool, batches, per_batch, threads, spool_after_s = sys.argv[1:]
    batches, per_batch, threads = int(batches), int(per_batch), int(threads)

    class Counting(IdGenerator):
        # span n (from 1) has span id n: batch b holds b * per_batch + 1 ...
        def __init__(self):
            self.span, self.trace = 0, 0
        def generate_span_id(self):
            self.span += 1
            return self.span
        def generate_trace_id(self):
            self.trace += 1
            return self.trace

    memory = InMemorySpanExporter()
    provider = TracerProvider(id_generator=Counting())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("crash")
    for n in range(batches * per_batch):
        tracer.start_span("chat", attributes={"gen_ai.operation.name": "chat"}).end()
    spans = list(memory.get_finished_spans())
    exporter = cs.ClickHouseSpanExporter(
        url, spool_dir=spool, durable=True, spool_after_s=float(spool_after_s),
        retry_initial_s=0.05, retry_max_s=0.2,
    )
    printing = threading.Lock()

    def export(first):
        for batch in range(first, batches, threads):
            part = spans[batch * per_batch : (batch + 1) * per_batch]
            if exporter.export(part) is SpanExportResult.SUCCESS:
                with printing:
                    sys.stdout.write(f"{batch}\\n")
                    sys.stdout.flush()

    workers = [threading.Thread(target=export, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    time.sleep(600)  # until killed
    """
)

# A view that sleeps once per insert block: inserts into the recent tier take 0.3 s.
SLOW_STORE = (
    "CREATE TABLE closedloop.slow_sink (x UInt8) ENGINE = Null",
    "CREATE MATERIALIZED VIEW closedloop.slow_mv TO closedloop.slow_sink "
    "AS SELECT sleep(0.3) AS x FROM closedloop.otel_traces_recent LIMIT 1",
)


def span_ids_of(batch: int) -> set[str]:
    first = batch * SPANS_PER_BATCH + 1
    return {f"{span_id:016x}" for span_id in range(first, first + SPANS_PER_BATCH)}


def run_and_kill(tmp_path: Path, rng: random.Random, spool_after_s: float) -> set[int]:
    """Start the child, kill -9 it after a random number of acknowledgements and a random
    pause; the batches it acknowledged."""
    child = subprocess.Popen(
        [
            sys.executable, "-c", CHILD, f"chdb://{tmp_path}/store", str(tmp_path / "spool"),
            str(BATCHES), str(SPANS_PER_BATCH), str(THREADS), str(spool_after_s),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    acknowledged: set[int] = set()
    try:
        kill_after = rng.randrange(1, BATCHES)
        while len(acknowledged) < kill_after:
            line = child.stdout.readline()
            assert line, f"the child ended early: {child.stderr.read()}"
            acknowledged.add(int(line))
        time.sleep(rng.choice((0.0, rng.uniform(0.0, 0.5))))  # the moment, not a bound
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    acknowledged |= {int(line) for line in child.stdout.read().split()}  # printed before
    return acknowledged


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("speed", ["fast store", "slow store"])
def test_kill_9_loses_no_acknowledged_span_and_stores_none_twice(tmp_path, seed, speed):
    rng = random.Random(f"{speed}-{seed}")
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url) as store:
        if speed == "slow store":
            for statement in SLOW_STORE:
                store.execute(statement)
    acknowledged = run_and_kill(tmp_path, rng, 0.1 if speed == "slow store" else 2.0)
    assert acknowledged

    with cs.connect(url) as store:  # the restart: the spool is replayed
        store.execute("DROP VIEW IF EXISTS closedloop.slow_mv")  # the replay need not wait
        exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool", durable=True)
        try:
            assert exporter.force_flush(timeout_millis=60_000)
        finally:
            exporter.shutdown()
        counts = {table: stored(store, table) for table in TABLES[:2]}
        rows = store.query(
            "SELECT span_id AS id, count() AS n FROM closedloop.llm_calls GROUP BY id"
        )
        counts["llm_calls"] = {row["id"]: row["n"] for row in rows}

    expected = set().union(*(span_ids_of(batch) for batch in acknowledged))
    for table in TABLES:
        assert {span_id: counts[table].get(span_id) for span_id in expected} == dict.fromkeys(
            expected, 1
        ), f"{table}: an acknowledged span is missing or stored twice"
        assert set(counts[table].values()) == {1}, f"{table}: a span is stored twice"
