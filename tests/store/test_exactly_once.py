"""Exactly once: a batch sent again with its token (a retry, a replay after a crash) is
stored once, in both trace tiers and in every table their materialized views fill; and
``durable=True`` acknowledges a batch only once it is inserted or spooled."""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

import closedloop.store as cs
from _support.traffic import generate_traffic
from _support.waiting import wait_for
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._rows import encode_rows, span_rows
from closedloop.store._spool import Batch, Spool, new_batch_id
from store.exported import NS, finished_spans, span_ids, stored

TIERS = ("otel_traces_recent", "otel_traces")


def data_tables(store) -> list[str]:
    """Every table that holds data: the trace tiers, their views' targets, and the record
    of rescues."""
    rows = store.query(
        "SELECT name FROM system.tables WHERE database = 'closedloop' "
        "AND engine LIKE '%MergeTree' AND name != 'closedloop_migrations' ORDER BY name"
    )
    return [row["name"] for row in rows]


def fed_by_inserts(store) -> list[str]:
    """The tables an insert into the trace tiers writes to (a rescue writes the other)."""
    return [table for table in data_tables(store) if table != "rescued_spans"]


def row_counts(store) -> dict[str, int]:
    return {
        table: store.query(f"SELECT count() AS n FROM closedloop.{table}")[0]["n"]
        for table in fed_by_inserts(store)
    }


def test_every_data_table_keeps_a_deduplication_window(store):
    rows = store.query(
        "SELECT name FROM system.tables WHERE database = 'closedloop' "
        "AND engine LIKE '%MergeTree' AND name != 'closedloop_migrations' "
        "AND create_table_query NOT LIKE '%non_replicated_deduplication_window = 10000%'"
    )
    assert rows == []
    assert len(data_tables(store)) == 8


def test_a_batch_sent_again_with_its_token_is_stored_once_everywhere(store):
    # realistic traffic over several days (one block per day), with content and feedback,
    # so that every view's target gets rows
    body = encode_rows(span_rows(generate_traffic(40, seed=3).spans))
    token = new_batch_id()
    for table in TIERS:
        store.insert_encoded(table, body, token=token)
    once = row_counts(store)
    assert all(once.values()), once
    for table in TIERS:
        store.insert_encoded(table, body, token=token)
    assert row_counts(store) == once
    # the token decides: the same rows with another token are another batch
    store.insert_encoded("otel_traces", body, token=new_batch_id())
    assert row_counts(store)["otel_traces"] == 2 * once["otel_traces"]


def test_the_token_is_remembered_across_a_restart(tmp_path):
    url = f"chdb://{tmp_path}/store"
    body = encode_rows(span_rows(finished_spans(5)))
    token = new_batch_id()
    with cs.connect(url) as store:
        store.insert_encoded("otel_traces_recent", body, token=token)
        once = row_counts(store)
    with cs.connect(url) as store:
        store.insert_encoded("otel_traces_recent", body, token=token)
        assert row_counts(store) == once


def test_a_token_is_lowercase_hex(store):
    with pytest.raises(ValueError, match="lowercase hex digits and colons"):
        store.insert_encoded("otel_traces", b"", token="x' SETTINGS a = 1 --")


def test_a_batch_inserted_before_a_crash_and_replayed_after_is_stored_once(tmp_path, store):
    """The crash window: the insert succeeded, the spool file was not removed yet."""
    spans = finished_spans(6)
    body = encode_rows(span_rows(spans))
    batch = Batch(0, "otel_traces", body, len(spans), new_batch_id())
    assert Spool(tmp_path / "spool", 1 << 20).append(batch)
    store.insert_encoded("otel_traces", body, token=batch.id)
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    try:
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(spans), 1)
        assert exporter.stats().adopted_spans == len(spans)
    finally:
        exporter.shutdown()


def test_a_batch_spooled_by_an_older_release_is_replayed(tmp_path, store):
    """Files named before batches had ids (no token: ClickHouse deduplicates by content)."""
    spans = finished_spans(2)
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "000000000003.otel_traces.2.jsonl").write_bytes(
        encode_rows(span_rows(spans))
    )
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    try:
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(spans), 1)
    finally:
        exporter.shutdown()


def test_parts_of_a_batch_around_a_refused_row_are_replayed_once(tmp_path, store):
    """A batch with a refused row is inserted in parts (bisection); replayed after a crash,
    the same parts carry the same tokens."""
    good = finished_spans(6)
    bad = finished_spans(1, start_ns=1_750_000_000_000 * NS)  # milliseconds taken as seconds
    body = encode_rows(span_rows(good[:3] + bad + good[3:]))
    batch = Batch(0, "otel_traces", body, 7, new_batch_id())
    for _ in range(2):  # the second time: the same file, as a crash would have left it
        assert Spool(tmp_path / "spool", 1 << 20).append(batch)
        exporter = ClickHouseSpanExporter(
            store, tables=("otel_traces",), spool_dir=tmp_path / "spool"
        )
        try:
            assert exporter.force_flush(timeout_millis=20_000)
        finally:
            exporter.shutdown()
        assert stored(store) == dict.fromkeys(span_ids(good), 1)


def test_durable_export_returns_once_the_rows_are_in_the_store(tmp_path, store):
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool", durable=True)
    spans = finished_spans(8)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        for table in TIERS:  # no flush: on return the rows are there
            rows = store.query(f"SELECT SpanId AS id FROM closedloop.{table}")
            assert {row["id"] for row in rows} == span_ids(spans)
    finally:
        exporter.shutdown()


def test_durable_export_to_a_store_that_is_down_returns_once_spooled(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    store.close()  # down
    exporter = ClickHouseSpanExporter(
        store, spool_dir=tmp_path / "spool", durable=True, retry_initial_s=5, retry_max_s=5
    )
    spans = finished_spans(8)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        stats = exporter.stats()  # on return: on disk, nothing only in memory
        assert (stats.spool_spans, stats.queued_spans) == (2 * len(spans), 0)
        spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool").glob("*.jsonl"))
        assert spooled.count(b"\n") == 2 * len(spans)
        store.reopen()
        assert exporter.force_flush(timeout_millis=20_000)
        assert stored(store) == dict.fromkeys(span_ids(spans), 1)
    finally:
        exporter.shutdown()
        store.close()


def test_durable_export_is_refused_when_neither_store_nor_spool_takes_it(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    store.close()
    exporter = ClickHouseSpanExporter(
        store, spool_dir=tmp_path / "spool", durable=True, max_spool_bytes=1_000
    )
    try:
        assert exporter.export(finished_spans(8)) is SpanExportResult.FAILURE
        stats = exporter.stats()
        assert (stats.dropped_spans, stats.queued_spans, stats.spool_spans) == (16, 0, 0)
    finally:
        exporter.shutdown()


def test_durable_exports_waiting_together_share_one_insert(tmp_path):
    """While one insert is under way, exports queue; the next insert takes them all."""
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool", durable=True)
    now = time.time_ns()  # one timestamp: one partition, so one block per insert
    batches = [finished_spans(5, start_ns=now) for _ in range(10)]
    results: list[SpanExportResult] = []
    try:
        with store._lock:  # the store is busy: the writer's first insert waits
            callers = [
                threading.Thread(target=lambda b=batch: results.append(exporter.export(b)))
                for batch in batches
            ]
            for caller in callers:
                caller.start()
            wait_for(lambda: exporter.stats().queued_spans == 2 * 5 * len(batches))
        for caller in callers:
            caller.join()
        assert results == [SpanExportResult.SUCCESS] * len(batches)
        assert stored(store) == dict.fromkeys(span_ids(s for b in batches for s in b), 1)
        # each insert is one block: the table's block numbers count its inserts
        inserts = store.query(
            "SELECT table, max(max_block_number) AS n FROM system.parts "
            "WHERE database = 'closedloop' AND table IN ('otel_traces_recent', 'otel_traces') "
            "GROUP BY table ORDER BY table"
        )
        assert sum(row["n"] for row in inserts) <= 4, inserts  # 20 batches, one per table each
    finally:
        exporter.shutdown()
        store.close()
