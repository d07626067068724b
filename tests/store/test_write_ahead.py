"""Write-ahead: ``write_ahead=True`` acknowledges an export once it is spooled, and the
writer inserts the spooled batches coalesced into large inserts, each exactly once even
when a crash comes in the middle of coalescing or of the insert."""

from __future__ import annotations

import shutil
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExportResult

import closedloop.store as cs
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._rows import encode_rows, span_rows
from closedloop.store._spool import Batch, Spool, new_batch_id
from store.exported import finished_spans, span_ids, stored

RECENT, SAMPLED = "otel_traces_recent", "otel_traces"


def rows(first: int, count: int) -> bytes:
    return b"".join(b'{"n":%d}\n' % n for n in range(first, first + count))


def spool_of(directory: Path, tables: list[str], spans: int = 2) -> Spool:
    """A spool holding one batch per entry of ``tables``, numbered 0, 1, ..."""
    spool = Spool(directory, 10**9)
    batches = [
        Batch(n, table, rows(n * spans, spans), spans, new_batch_id())
        for n, table in enumerate(tables)
    ]
    assert spool.append_all(batches) == len(batches)
    return spool


def on_disk(directory: Path) -> list[str]:
    return sorted(
        path.name.split(".")[0] + "." + path.name.split(".")[1] for path in directory.iterdir()
    )


def test_the_oldest_batch_and_later_ones_for_its_table_are_inserted_as_one(tmp_path: Path) -> None:
    spool = spool_of(tmp_path, [RECENT, SAMPLED, RECENT, RECENT, SAMPLED])
    ids_before = {spool.peek().id}  # type: ignore[union-attr]  # handed out: stays alone
    batch = spool.peek(coalesce_up_to=100)
    assert batch is not None and batch.id in ids_before and batch.spans == 2

    spool = spool_of(tmp_path / "fresh", [RECENT, SAMPLED, RECENT, RECENT, SAMPLED])
    batch = spool.peek(coalesce_up_to=100)
    assert batch is not None
    assert (batch.sequence, batch.table, batch.spans) == (0, RECENT, 6)
    assert batch.body == rows(0, 2) + rows(4, 2) + rows(6, 2)  # in export order
    # the batches for the other table stay, in their order, and the totals hold
    assert on_disk(tmp_path / "fresh") == [
        f"{0:012d}-{3:012d}.{RECENT}",
        f"{1:012d}.{SAMPLED}",
        f"{4:012d}.{SAMPLED}",
    ]
    assert (len(spool), spool.spans, spool.next_sequence) == (3, 10, 5)
    spool.remove(batch.sequence)
    following = spool.peek(coalesce_up_to=100)
    assert following is not None and (following.table, following.spans) == (SAMPLED, 4)


def test_coalescing_stops_at_the_span_bound_and_below_batches_held_in_memory(
    tmp_path: Path,
) -> None:
    spool = spool_of(tmp_path / "bound", [RECENT] * 5)
    first = spool.peek(coalesce_up_to=6)
    assert first is not None and first.spans == 6

    spool = spool_of(tmp_path / "below", [RECENT] * 5)
    held = spool.peek(coalesce_up_to=100, coalesce_below=2)  # the caller holds number 2
    assert held is not None and held.spans == 4


def test_a_crash_while_coalescing_leaves_each_row_in_one_batch(tmp_path: Path) -> None:
    spool = spool_of(tmp_path / "spool", [RECENT, SAMPLED, RECENT, RECENT])
    parts = tmp_path / "parts"
    shutil.copytree(tmp_path / "spool", parts)
    merged = spool.peek(coalesce_up_to=100)
    assert merged is not None
    # the crash: the coalesced file is durable, its parts were not removed yet
    for part in parts.iterdir():
        if RECENT in part.name:
            shutil.copy(part, tmp_path / "spool" / part.name)

    reloaded = Spool(tmp_path / "spool", 10**9)
    assert (len(reloaded), reloaded.spans) == (2, 8)
    again = reloaded.peek(coalesce_up_to=100)  # not fresh: the same batch, the same token
    assert again is not None and (again.id, again.body) == (merged.id, merged.body)
    assert reloaded.next_sequence == 4  # never a number inside the coalesced range again


def test_write_ahead_acknowledges_once_spooled_and_inserts_each_span_once(
    tmp_path: Path,
) -> None:
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(
        store, spool_dir=tmp_path / "spool", tables=(RECENT,), write_ahead=True
    )
    exports = [finished_spans(5) for _ in range(12)]
    try:
        for spans in exports:
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        # acknowledged from the spool: the writer waits for more before it inserts
        spooled = exporter.stats()
        assert spooled.queued_spans == 0 and spooled.spooled_spans_total == 0
        assert spooled.spool_spans + spooled.exported_spans == 60
        assert exporter.force_flush(timeout_millis=20_000)
        every = [span for spans in exports for span in spans]
        assert stored(store, RECENT) == dict.fromkeys(span_ids(every), 1)
        assert exporter.stats().exported_spans == 60
    finally:
        exporter.shutdown()
        store.close()


def test_a_coalesced_batch_inserted_just_before_a_crash_is_stored_once(tmp_path: Path) -> None:
    store = cs.connect(f"chdb://{tmp_path}/store")
    exports = [finished_spans(4) for _ in range(3)]
    spool = Spool(tmp_path / "spool", 10**9)
    batches = [
        Batch(n, RECENT, encode_rows(span_rows(spans)), len(spans), new_batch_id())
        for n, spans in enumerate(exports)
    ]
    assert spool.append_all(batches) == 3
    merged = spool.peek(coalesce_up_to=100)
    assert merged is not None and merged.spans == 12
    # the insert went through; the process died before it removed the batch
    store.insert_encoded(RECENT, merged.body, token=merged.id)
    replaying = ClickHouseSpanExporter(
        store, spool_dir=tmp_path / "spool", tables=(RECENT,), write_ahead=True
    )
    try:
        assert replaying.force_flush(timeout_millis=20_000)
        every = [span for spans in exports for span in spans]
        assert stored(store, RECENT) == dict.fromkeys(span_ids(every), 1)
    finally:
        replaying.shutdown()
        store.close()
