"""``ClickHouseSpanExporter``: OTel spans straight into the store, nothing acknowledged lost.

``export()`` maps spans to rows and queues them; a writer thread inserts batches with
retries and exponential backoff. When the store stays down, batches move to a bounded
on-disk spool, replayed in export order once the store is back. Memory is bounded too:
when neither the queue nor the spool can take a batch, ``export()`` refuses it (FAILURE)
and counts its spans as dropped, so every batch it acknowledged reaches the store.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from closedloop import health
from closedloop.store.base import Store
from closedloop.store.connect import connect
from closedloop.store.rows import encode_rows, span_rows
from closedloop.store.spool import Batch, Spool

logger = logging.getLogger("closedloop.store")


@dataclass
class ExporterStats:
    """Counters since start: every span is exported, queued, spooled or dropped."""

    exported_spans: int = 0
    dropped_spans: int = 0
    spooled_spans_total: int = 0
    failed_inserts: int = 0
    queued_spans: int = 0
    spool_spans: int = 0
    spool_bytes: int = 0


class ClickHouseSpanExporter(SpanExporter):
    """Writes spans to ``otel_traces`` (or other trace tables) of a closedloop store.

    ``store_or_url`` is a ``Store`` or a store URL; with a URL the exporter connects
    lazily and reconnects after failures. ``max_queue_spans`` bounds memory,
    ``max_spool_bytes`` bounds the spool under ``spool_dir`` (default: a directory under
    the system temp dir named after the process).
    """

    def __init__(
        self,
        store_or_url: Store | str,
        *,
        tables: Sequence[str] = ("otel_traces",),
        max_queue_spans: int = 20_000,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        attempts_before_spool: int = 3,
    ) -> None:
        if max_queue_spans < 1:
            raise ValueError(f"max_queue_spans must be >= 1, got {max_queue_spans!r}.")
        if not tables:
            raise ValueError("tables must name at least one trace table, e.g. ('otel_traces',).")
        self._url = store_or_url if isinstance(store_or_url, str) else None
        self._store = None if isinstance(store_or_url, str) else store_or_url
        self._tables = tuple(tables)
        self._max_queue_spans = max_queue_spans
        self._spool = Spool(
            spool_dir or os.path.join(tempfile.gettempdir(), f"closedloop-spool-{os.getpid()}"),
            max_spool_bytes,
        )
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._attempts_before_spool = attempts_before_spool
        self._queue: deque[Batch] = deque()
        self._queued_spans = 0
        self._in_flight: Batch | None = None
        self._sequence = self._spool.next_sequence
        self._stats = ExporterStats()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._failing = False
        self._writer = threading.Thread(target=self._run, name="closedloop-exporter", daemon=True)
        self._writer.start()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopping:
            return SpanExportResult.FAILURE
        try:
            body = encode_rows(span_rows(spans))
        except Exception as error:
            health.record_failure("store.export.map", error)
            self._count_dropped(len(spans))
            return SpanExportResult.FAILURE
        incoming = len(spans) * len(self._tables)
        with self._cond:
            while self._held_spans() + incoming > self._max_queue_spans and self._queue:
                if not self._spool.append(self._queue[0]):
                    break
                self._stats.spooled_spans_total += self._pop_queue().spans
            if self._held_spans() and self._held_spans() + incoming > self._max_queue_spans:
                self._count_dropped(len(spans))
                return SpanExportResult.FAILURE
            for table in self._tables:
                self._queue.append(Batch(self._sequence, table, body, len(spans)))
                self._sequence += 1
                self._queued_spans += len(spans)
            self._cond.notify_all()
        return SpanExportResult.SUCCESS

    def _held_spans(self) -> int:
        """Spans held in memory: queued plus the batch being inserted (lock held)."""
        in_flight = self._in_flight.spans if self._in_flight is not None else 0
        return self._queued_spans + in_flight

    def _pop_queue(self) -> Batch:
        batch = self._queue.popleft()
        self._queued_spans -= batch.spans
        return batch

    def _count_dropped(self, spans: int) -> None:
        self._stats.dropped_spans += spans
        health.count("store.dropped_spans", spans)
        if self._stats.dropped_spans == spans:
            logger.error(
                "closedloop: store unreachable and spool full (%d bytes); dropping spans. "
                "Further drops are only counted: see ClickHouseSpanExporter.stats().",
                self._spool.max_bytes,
            )

    def _connected_store(self) -> Store:
        if self._store is None:
            assert self._url is not None
            self._store = connect(self._url)
        return self._store

    def _insert(self, batch: Batch) -> bool:
        try:
            self._connected_store().insert_encoded(batch.table, batch.body)
        except Exception as error:
            self._stats.failed_inserts += 1
            if self._stats.failed_inserts == 1:
                logger.warning("closedloop: insert into the store failed, will retry: %s", error)
            if self._url is not None:
                self._reset_connection()
            return False
        self._stats.exported_spans += batch.spans
        return True

    def _reset_connection(self) -> None:
        store, self._store = self._store, None
        try:
            if store is not None:
                store.close()
        except Exception as error:
            health.record_failure("store.exporter.close", error)

    def _next_batch(self) -> tuple[Batch | None, bool]:
        """The oldest pending batch and whether it comes from the spool (lock held)."""
        spooled = self._spool.head_sequence()
        if (
            self._in_flight is None
            and self._queue
            and (spooled is None or self._queue[0].sequence < spooled)
        ):
            self._in_flight = self._pop_queue()
        if self._in_flight is not None and (spooled is None or self._in_flight.sequence < spooled):
            return self._in_flight, False
        return (self._spool.peek(), True) if spooled is not None else (None, False)

    def _pending(self) -> bool:
        return bool(self._queue) or self._in_flight is not None or len(self._spool) > 0

    def _run(self) -> None:
        failures = 0
        while True:
            self._failing = failures > 0
            with self._cond:
                while not self._pending() and not self._stopping:
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stopping and (failures or not self._pending()):
                    return
                batch, from_spool = self._next_batch()
                self._busy = True
            ok = batch is not None and self._insert(batch)
            with self._cond:
                self._busy = False
                if ok:
                    failures = 0
                    if from_spool:
                        self._spool.pop()
                    else:
                        self._in_flight = None
                    continue
                failures += 1
                if failures >= self._attempts_before_spool:
                    self._spool_memory()
            self._backoff(failures)

    def _spool_memory(self) -> None:
        """The store stays down: move what memory holds to the spool, oldest first, while
        it fits (lock held). What does not fit stays queued: it was acknowledged."""
        if self._in_flight is not None:
            if not self._spool.append(self._in_flight):
                return
            self._stats.spooled_spans_total += self._in_flight.spans
            self._in_flight = None
        while self._queue and self._spool.append(self._queue[0]):
            self._stats.spooled_spans_total += self._pop_queue().spans

    def _backoff(self, failures: int) -> None:
        delay = min(self._retry_max_s, self._retry_initial_s * 2 ** min(failures - 1, 16))
        with self._cond:
            if not self._stopping:
                self._cond.wait(timeout=delay * random.uniform(0.5, 1.0))

    def stats(self) -> ExporterStats:
        with self._cond:
            self._stats.queued_spans = self._held_spans()
            self._stats.spool_spans = self._spool.spans
            self._stats.spool_bytes = self._spool.bytes
            return ExporterStats(**vars(self._stats))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything queued and spooled is in the store (or the timeout)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            self._cond.notify_all()
            while self._pending() or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=min(remaining, 0.05))
        return True

    def shutdown(self) -> None:
        """Flush briefly (unless the store is down), spool what remains, stop the writer;
        close a store we opened."""
        if not self._failing:
            self.force_flush(timeout_millis=5_000)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._writer.join(timeout=10)
        with self._cond:
            self._spool_memory()
        if self._url is not None:
            self._reset_connection()
