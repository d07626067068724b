"""ClickHouseSpanExporter durability: what export() acknowledged reaches the store, whatever
happens (bad strings, refused rows, restarts, kill -9, a store that never answers)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

import closedloop.store as cs
from _support.stores import dead_store_url
from _support.waiting import wait_for
from closedloop import _health as health
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._spool import Batch, Spool
from store.exported import NS, finished_spans, span_ids, stored

# The default exporter writes each span to both trace tiers; the spool's counters count
# rows, so tests of the spool's arithmetic write one tier.
ONE_TIER = ("otel_traces",)


def test_a_lone_surrogate_does_not_take_the_batch_with_it(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    good = finished_spans(10)
    # set by the app directly: half of an emoji's surrogate pair
    bad = finished_spans(1, **{"gen_ai.prompt": "cut emoji \ud83d"})
    try:
        assert exporter.export(good + bad) is SpanExportResult.SUCCESS
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(good + bad), 1)
        row = store.query(
            "SELECT SpanAttributes['gen_ai.prompt'] AS prompt FROM closedloop.otel_traces "
            "WHERE SpanId = {id:String}",
            {"id": span_ids(bad).pop()},
        )
        assert row == [{"prompt": "cut emoji \ufffd"}]
    finally:
        exporter.shutdown()
        store.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import closedloop.store as cs

    url, acks, ending = sys.argv[1:4]
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for n in range(400):
        provider.get_tracer("child").start_span(f"call {n}").end()
    spans = list(memory.get_finished_spans())
    exporter = cs.ClickHouseSpanExporter(url, retry_initial_s=0.05, retry_max_s=0.2)
    with open(acks, "a") as out:
        for n, start in enumerate(range(0, len(spans), 10)):
            part = spans[start : start + 10]
            if exporter.export(part) is SpanExportResult.SUCCESS:
                out.write("".join(f"{span.context.span_id:016x}\\n" for span in part))
                out.flush()
            while n == 0 and exporter.stats().failed_inserts < 1:
                time.sleep(0.01)  # from here on the store is known to be down
            time.sleep(0.01)
    if ending == "exit":
        exporter.shutdown()
    else:
        time.sleep(600)  # until killed
    """
)


def run_child_while_store_is_down(tmp_path, ending: str) -> set[str]:
    """A separate process exports to the chDB store this process holds (so, for it, the
    store is down), with default spool settings; returns the span ids it acknowledged."""
    acks = tmp_path / "acks.txt"
    acks.touch()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"chdb://{tmp_path}/store", str(acks), ending],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if ending == "exit":
            assert child.wait(timeout=120) == 0, child.stderr.read() if child.stderr else ""
        else:
            wait_for(lambda: len(acks.read_text().split()) >= 150 or child.poll() is not None, 120)
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return set(acks.read_text().split())


def replay_with_defaults(store) -> ClickHouseSpanExporter:
    exporter = ClickHouseSpanExporter(store)
    assert exporter.force_flush(timeout_millis=30_000)
    return exporter


def test_a_restarted_exporter_replays_what_its_predecessor_spooled(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    try:
        acknowledged = run_child_while_store_is_down(tmp_path, "exit")
        assert len(acknowledged) == 400
        exporter = replay_with_defaults(store)
        exporter.shutdown()
        assert stored(store) == dict.fromkeys(acknowledged, 1)
        # the child wrote with the defaults: a row per span and tier
        assert exporter.stats().adopted_spans == 2 * 400
        assert health.stats()["events"]["store.spool.adopted_spans"] == 2 * 400
    finally:
        store.close()


def test_kill_9_during_an_outage_loses_no_acknowledged_span(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    try:
        acknowledged = run_child_while_store_is_down(tmp_path, "kill")
        assert len(acknowledged) >= 150
        replay_with_defaults(store).shutdown()
        rows = stored(store)
        assert {span_id: rows.get(span_id) for span_id in acknowledged} == dict.fromkeys(
            acknowledged, 1
        )
        assert set(rows.values()) == {1}
    finally:
        store.close()


def test_live_exporters_never_share_a_spool_and_orphans_are_adopted(tmp_path):
    """A second exporter for the same store spools on its own; once its process is
    gone, the next exporter to start adopts what it left."""
    store = cs.connect(f"chdb://{tmp_path}/store")
    owner = ClickHouseSpanExporter(store)  # owns the store's default spool directory
    try:
        acknowledged = run_child_while_store_is_down(tmp_path, "kill")
        state = Path(os.environ["CLOSEDLOOP_HOME"])
        orphans = [path for path in state.rglob("process-*") if path.is_dir()]
        assert len(orphans) == 1 and list(orphans[0].glob("*.jsonl")), "child spooled apart"
        home = orphans[0].parent
        assert list(home.glob("*.jsonl")) == []  # nothing in the live owner's directory
        newcomer = ClickHouseSpanExporter(store)
        assert newcomer.force_flush(timeout_millis=30_000)
        newcomer.shutdown()
        rows = stored(store)
        assert {span_id: rows.get(span_id) for span_id in acknowledged} == dict.fromkeys(
            acknowledged, 1
        )
        assert newcomer.stats().adopted_spans >= len(acknowledged)
        assert owner.spool_directory == home == newcomer.spool_directory.parent
        assert not orphans[0].exists()
    finally:
        owner.shutdown()
        store.close()


@pytest.mark.parametrize("tables", [("otel_traces",), ("otel_traces_recent", "otel_traces")])
def test_a_refused_row_is_set_aside_and_later_batches_flow(tmp_path, store, tables):
    """A span timestamp given in milliseconds where seconds belong (a feedback timestamp, say)
    is out of DateTime64's range: the store refuses that row, not the others."""
    exporter = ClickHouseSpanExporter(
        store, tables=tables, spool_dir=tmp_path / "spool", retry_initial_s=0.01, retry_max_s=0.05
    )
    good = finished_spans(6)
    bad = finished_spans(1, start_ns=int(time.time() * 1000) * NS)
    later = finished_spans(5)
    try:
        assert exporter.export(good[:3] + bad + good[3:]) is SpanExportResult.SUCCESS
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(good), 1)
        assert exporter.export(later) is SpanExportResult.SUCCESS
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(good + later), 1)
        stats = exporter.stats()
        assert (stats.rejected_spans, stats.dropped_spans) == (len(tables), 0)
        assert health.stats()["events"]["store.rejected_spans"] == len(tables)
        letters = [
            json.loads(line)
            for path in exporter.dead_letter_directory.glob("*.jsonl")
            for line in path.read_text().splitlines()
        ]
        assert sorted(letter["table"] for letter in letters) == sorted(tables)
        assert {letter["row"]["SpanId"] for letter in letters} == span_ids(bad)
        assert all("Timestamp" in letter["error"] for letter in letters)
    finally:
        exporter.shutdown()


def test_a_refused_row_in_a_spooled_batch_is_set_aside_too(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    store.close()  # down: the batch goes to the spool
    exporter = ClickHouseSpanExporter(
        store, tables=ONE_TIER, spool_dir=tmp_path / "spool", retry_initial_s=0.01,
        retry_max_s=0.05,
    )  # fmt: skip
    good = finished_spans(6)
    bad = finished_spans(1, start_ns=int(time.time() * 1000) * NS)
    try:
        assert exporter.export(good + bad) is SpanExportResult.SUCCESS
        wait_for(lambda: exporter.stats().spool_spans == 7)
        store.reopen()
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(good), 1)
        assert exporter.stats().rejected_spans == 1
        assert list((tmp_path / "spool").glob("*.jsonl")) == []
    finally:
        exporter.shutdown()
        store.close()


def test_a_spool_file_deleted_by_hand_does_not_stop_the_others(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    store.close()
    # a long backoff: the writer waits (until force_flush) while the file is deleted
    exporter = ClickHouseSpanExporter(
        store, tables=ONE_TIER, spool_dir=tmp_path / "spool", retry_initial_s=5, retry_max_s=5
    )
    first, second = finished_spans(3), finished_spans(4)
    try:
        # one at a time: batches spooled together are merged into one file
        exporter.export(first)
        wait_for(lambda: exporter.stats().spool_spans == 3)
        exporter.export(second)
        wait_for(lambda: exporter.stats().spool_spans == 7)
        min((tmp_path / "spool").glob("*.jsonl")).unlink()
        store.reopen()
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(second), 1)
        assert health.stats()["events"]["store.spool.vanished_spans"] == 3
    finally:
        exporter.shutdown()
        store.close()


def test_a_partly_inserted_spool_batch_keeps_only_the_rest(tmp_path):
    """After a bisection stopped by a connection error, the spooled batch is rewritten to
    the rows still to insert, in place, and a restart sees exactly those."""
    spool = Spool(tmp_path / "spool", 10_000)
    batch_id = "0123456789abcdef" * 2
    assert spool.append(Batch(7, "otel_traces", b'{"a":1}\n{"a":2}\n{"a":3}\n', 3, batch_id))
    spool.replace(Batch(7, "otel_traces", b'{"a":3}\n', 1, batch_id))
    reopened = Spool(tmp_path / "spool", 10_000)
    assert (reopened.spans, reopened.bytes) == (1, len(b'{"a":3}\n'))
    assert reopened.peek() == Batch(7, "otel_traces", b'{"a":3}\n', 1, batch_id)
    assert [path.name for path in (tmp_path / "spool").iterdir()] == [
        f"000000000007.otel_traces.1.{batch_id}.jsonl"
    ]


def test_backoff_holds_while_spans_keep_coming(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    store.close()  # the store is down
    exporter = ClickHouseSpanExporter(
        store, spool_dir=tmp_path / "spool", retry_initial_s=0.5, retry_max_s=0.5
    )
    try:
        started = time.monotonic()
        for span in finished_spans(300):
            assert exporter.export([span]) is SpanExportResult.SUCCESS
            time.sleep(0.005)
        elapsed = time.monotonic() - started
        attempts = exporter.stats().failed_inserts
    finally:
        exporter.shutdown()
    # every wait between two attempts lasts at least 0.25 s (0.5 s, jittered down to half)
    assert 0 < attempts <= 2 + elapsed / 0.25


class SilentServer:
    """A real TCP server that accepts connections and never answers: a store host that
    hangs (an overloaded proxy, a half-dead VM)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._accepted.append(connection)

    def close(self) -> None:
        if self._listener.fileno() != -1:
            self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        for connection in self._accepted:
            connection.close()


def test_a_store_that_never_answers_cannot_keep_acknowledged_spans_in_memory(tmp_path):
    spans = finished_spans(200)
    server = SilentServer()
    exporter = ClickHouseSpanExporter(
        f"clickhouse://default:@127.0.0.1:{server.port}/closedloop",
        tables=ONE_TIER,
        spool_dir=tmp_path / "spool",
    )
    try:
        for start in range(0, len(spans), 20):
            assert exporter.export(spans[start : start + 20]) is SpanExportResult.SUCCESS
        wait_for(lambda: exporter.stats().spool_spans == len(spans))
        assert exporter.stats().queued_spans == 0
    finally:
        server.close()  # first, so the writer's hanging request ends
        exporter.shutdown()


def test_a_batch_that_memory_cannot_hold_beside_the_insert_under_way_is_spooled(tmp_path):
    spans = finished_spans(25)
    server = SilentServer()
    exporter = ClickHouseSpanExporter(
        f"clickhouse://default:@127.0.0.1:{server.port}/closedloop",
        tables=ONE_TIER,
        spool_dir=tmp_path / "spool",
        max_queue_spans=20,
        spool_after_s=600,  # the hanging insert keeps its batch in memory
    )
    try:
        assert exporter.export(spans[:10]) is SpanExportResult.SUCCESS
        wait_for(lambda: exporter._in_flight is not None)  # the writer hangs on it
        assert exporter.export(spans[10:]) is SpanExportResult.SUCCESS
        stats = exporter.stats()
        assert (stats.dropped_spans, stats.queued_spans, stats.spool_spans) == (0, 10, 15)
    finally:
        server.close()
        exporter.shutdown()


def test_server_timeouts_are_configurable_in_the_url(tmp_path):
    server = SilentServer()
    try:
        # the client's own words: it waited the 1 s asked for (default 30 s, library's 300 s)
        with pytest.raises(cs.StoreError, match=re.escape("(read timeout=1)")):
            cs.connect(f"clickhouse://default:@127.0.0.1:{server.port}/db?send_receive_timeout=1")
    finally:
        server.close()
    with pytest.raises(ValueError, match="only apply to a ClickHouse server"):
        cs.connect(f"chdb://{tmp_path}/store?connect_timeout=1")


def test_query_binds_bytes_as_the_string_bytes(store):
    value = b"ab\xff\x00'\\"
    rows = store.query(
        "SELECT hex({p:String}) AS one, arrayMap(x -> hex(x), {a:Array(String)}) AS many",
        {"p": value, "a": [value, b"c"]},
    )
    assert rows == [{"one": value.hex().upper(), "many": [value.hex().upper(), "63"]}]


def test_arguments_are_checked_at_the_call(tmp_path):
    url = f"chdb://{tmp_path}/store"
    message = (
        "tables=('otel_trace',): unknown table 'otel_trace'; "
        "use 'otel_traces' or 'otel_traces_recent'."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ClickHouseSpanExporter(url, tables=("otel_trace",))
    with pytest.raises(TypeError, match=re.escape("tables='otel_traces': expected a sequence")):
        ClickHouseSpanExporter(url, tables="otel_traces")
    with pytest.raises(ValueError, match=re.escape("tables=('otel_traces', 'otel_traces')")):
        ClickHouseSpanExporter(url, tables=("otel_traces", "otel_traces"))
    with pytest.raises(TypeError, match=re.escape("store_or_url=42: expected a closedloop Store")):
        ClickHouseSpanExporter(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown scheme 'chbd'"):
        ClickHouseSpanExporter("chbd:///x")
    with pytest.raises(TypeError, match=re.escape("max_queue_spans=True is a bool, not a int")):
        ClickHouseSpanExporter(url, max_queue_spans=True)
    with pytest.raises(ValueError, match=re.escape("max_queue_spans=0 must be at least 1")):
        ClickHouseSpanExporter(url, max_queue_spans=0)
    with pytest.raises(TypeError, match=re.escape("spool_after_s='2' is a str, not a int or")):
        ClickHouseSpanExporter(url, spool_after_s="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("spool_after_s=0 must be a positive, finite")):
        ClickHouseSpanExporter(url, spool_after_s=0)
    with pytest.raises(ValueError, match=re.escape("retry_max_s=0.1 must be at least 0.2")):
        ClickHouseSpanExporter(url, retry_max_s=0.1)
    with pytest.raises(TypeError, match=re.escape("spool_dir=3 is a int, not a str or PathLike")):
        ClickHouseSpanExporter(url, spool_dir=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("durable='yes' is a str, not a bool")):
        ClickHouseSpanExporter(url, durable="yes")  # type: ignore[arg-type]


def test_shutdown_with_a_full_spool_counts_what_it_cannot_keep(tmp_path):
    exporter = ClickHouseSpanExporter(
        dead_store_url(), tables=ONE_TIER, spool_dir=tmp_path / "spool", max_spool_bytes=3_000
    )
    acknowledged = 0
    for _ in range(20):
        if exporter.export(finished_spans(1)) is SpanExportResult.SUCCESS:
            acknowledged += 1
    exporter.shutdown()
    stats = exporter.stats()
    assert stats.queued_spans == 0
    assert stats.spool_spans + stats.dropped_spans == 20
    assert stats.spool_spans < acknowledged  # some acknowledged spans could not be kept...
    assert health.stats()["events"]["store.dropped_spans"] == stats.dropped_spans  # ...counted


def test_export_racing_shutdown_is_refused_not_lost(tmp_path):
    exporter = ClickHouseSpanExporter(dead_store_url(), spool_dir=tmp_path / "spool")
    spans = finished_spans(5)
    encoding = threading.Event()
    original = exporter.encode_spans

    def slow_encode(batch):
        encoding.set()
        time.sleep(0.5)  # shutdown() completes while this batch is being encoded
        return original(batch)

    exporter.encode_spans = slow_encode
    results = []
    racer = threading.Thread(target=lambda: results.append(exporter.export(spans)))
    racer.start()
    encoding.wait()
    exporter.shutdown()
    racer.join()
    stats = exporter.stats()
    assert results == [SpanExportResult.FAILURE]
    assert stats.dropped_spans == 5 and stats.queued_spans == 0


def test_an_unwritable_state_directory_falls_back_to_the_temp_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(blocker / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    exporter = ClickHouseSpanExporter(dead_store_url(), tables=ONE_TIER)
    try:
        assert exporter.export(finished_spans(2)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert exporter.stats().spool_spans == 2
    assert list((tmp_path / "tmp").glob("closedloop-*/spool/*/*.jsonl"))
