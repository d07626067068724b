"""``ClickHouseSpanExporter``: OTel spans straight into the store, nothing acknowledged lost.

``export()`` maps spans to rows and hands them to a writer thread, which inserts batches
in export order with retries and exponential backoff. A batch ``export()`` acknowledged
(SUCCESS) waits in memory only while the store answers: once an insert has failed, or
has been running longer than ``spool_after_s``, ``export()`` writes each batch to the
bounded on-disk spool (fsynced) before it returns, and what memory held goes there too;
a guard thread spools any batch memory has held longer than ``spool_after_s``, so a store
that never answers cannot keep acknowledged spans in memory. Spooled batches are replayed
in export order once the store is back, also by the next process (see ``spool_home``).
Rows the store refuses for what they hold are found by bisecting the batch and set aside
(``dead_letter``); the rest is inserted and later batches flow. Memory is bounded: when
neither memory nor spool can take a batch, ``export()`` refuses it (FAILURE) and counts its
spans as dropped.

Batches waiting in memory for one table are inserted together (a group commit), and each
insert carries the batch's id as its deduplication token, so a batch sent twice (a retry
after a lost answer, a replay after a crash) is stored once. With ``durable=True``,
``export()`` returns SUCCESS only once its rows are inserted or spooled: for a server that
acknowledges a request only when a crash can no longer lose it. ``write_ahead=True`` goes
further: every batch is spooled first and acknowledged then, and the writer inserts from
the spool, coalescing the batches spooled meanwhile into inserts of up to half of memory,
so inserts stay large (a store makes one part per insert and merges small parts at a
cost) however small the exports are and however few are in flight.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from closedloop import _health as health
from closedloop.store import _instruments as instruments
from closedloop.store._base import Store
from closedloop.store._connect import connect
from closedloop.store._dead_letter import DeadLetters
from closedloop.store._errors import StoreDataError
from closedloop.store._exporter_options import (
    check_count,
    check_directory,
    check_flag,
    check_seconds,
    check_tables,
    check_target,
)
from closedloop.store._rows import ResourceColumns, encode_row, span_row
from closedloop.store._spool import Batch, Spool, new_batch_id
from closedloop.store._spool_home import OwnedSpool, default_directory

logger = logging.getLogger("closedloop.store")

WRITE_AHEAD_LINGER_S: Final = 0.5
"""Write-ahead: the longest a spooled batch waits for others before its insert begins."""
WRITE_AHEAD_QUIET_S: Final = 0.05
"""Write-ahead: no export for this long ends the wait (the stream paused or ended)."""


@dataclass
class ExporterStats:
    """Counters since start: every span is exported, held, spooled, rejected or dropped.
    The counts are also OTel metrics, summed over exporters (``store.instruments``)."""

    exported_spans: int = 0
    dropped_spans: int = 0
    rejected_spans: int = 0
    spooled_spans_total: int = 0
    adopted_spans: int = 0
    failed_inserts: int = 0
    queued_spans: int = 0
    spool_spans: int = 0
    spool_bytes: int = 0


class _Ticket:
    """A durable ``export()`` call waiting for its batches (one per table): each is
    inserted, spooled, or refused."""

    __slots__ = ("failed", "pending", "since")

    def __init__(self, batches: int, since: float) -> None:
        self.pending = batches
        self.since = since
        self.failed = False


@dataclass(eq=False)
class _Held:
    """A batch so far only in memory, since when, and the durable exports waiting for it
    (none by default: ``export()`` acknowledged it already)."""

    batch: Batch
    since: float
    tickets: list[_Ticket] = field(default_factory=list)


def _merged(helds: Sequence[_Held]) -> list[_Held]:
    """``helds`` as one batch per table, in sequence order: one insert, or one spool file,
    for many exports. A merged batch holds new rows together, so it gets a new id."""
    by_table: dict[str, list[_Held]] = {}
    for held in helds:
        by_table.setdefault(held.batch.table, []).append(held)
    merged = []
    for table, parts in by_table.items():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        body = b"".join(part.batch.body for part in parts)
        spans = sum(part.batch.spans for part in parts)
        batch = Batch(parts[0].batch.sequence, table, body, spans, new_batch_id())
        tickets = [ticket for part in parts for ticket in part.tickets]
        merged.append(_Held(batch, parts[0].since, tickets))
    return sorted(merged, key=lambda held: held.batch.sequence)


def _token(batch: Batch, body: bytes) -> str | None:
    """The insert's deduplication token: the batch's id, and for a part of the batch (the
    rows around a refused one) a digest of the part too, so each part is deduplicated on
    its own. None for a batch spooled by a release that gave batches no id."""
    if not batch.id:
        return None
    if body is batch.body:
        return batch.id
    return f"{batch.id}:{hashlib.blake2b(body, digest_size=16).hexdigest()}"


class ClickHouseSpanExporter(SpanExporter):
    """Writes spans to both trace tiers of a closedloop store (or the ``tables`` given).

    By default every span goes to ``otel_traces_recent``, whose insert stream fills the
    typed tables behind the metrics and which the rescue copies from, and to
    ``otel_traces``, the long-lived tier: an app without a collector gets what the
    collector's two exporters write. Under a ``TailSamplingSpanProcessor`` the recent tier
    still gets every span and ``otel_traces`` only the kept ones (see ``export_to``).

    ``store_or_url`` is a ``Store`` or a store URL; with a URL the exporter connects
    lazily and reconnects after failures. ``max_queue_spans`` bounds memory;
    ``max_spool_bytes`` bounds the spool (and, separately, the dead letters) under
    ``spool_dir`` (default: a directory per store under closedloop's state directory, see
    ``spool_home``). ``spool_after_s`` is the longest an acknowledged batch waits in memory.

    ``durable=True``: ``export()`` waits until the batch is inserted, or spooled (fsynced,
    with its directory) once the store has failed or it has waited ``spool_after_s``, and
    only then returns SUCCESS; FAILURE when neither could take it. Concurrent exports share
    one insert (and one fsync), so throughput grows with the number of callers.

    ``write_ahead=True`` (implies ``durable``): ``export()`` spools its batch and returns;
    the writer inserts the spooled batches, waiting up to ``WRITE_AHEAD_LINGER_S`` for a
    full insert (half of ``max_queue_spans``) to gather while exports keep coming (a pause
    of ``WRITE_AHEAD_QUIET_S`` ends the wait). chDB inserts 512 spans at twice the CPU per
    span of 4,096, and merges the small parts after. When the spool is full, the export
    waits in memory as a durable one does.
    """

    def __init__(
        self,
        store_or_url: Store | str,
        *,
        tables: Sequence[str] = ("otel_traces_recent", "otel_traces"),
        max_queue_spans: int = 20_000,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        spool_after_s: float = 2.0,
        durable: bool = False,
        write_ahead: bool = False,
    ) -> None:
        where = check_target(store_or_url)
        self._tables = check_tables(tables)
        self._max_queue_spans = check_count("max_queue_spans", max_queue_spans, 20_000)
        max_spool_bytes = check_count("max_spool_bytes", max_spool_bytes, 256 * 1024 * 1024)
        self._retry_initial_s = check_seconds("retry_initial_s", retry_initial_s, 0.2)
        self._retry_max_s = check_seconds("retry_max_s", retry_max_s, 10.0, retry_initial_s)
        self._spool_after_s = check_seconds("spool_after_s", spool_after_s, 2.0)
        self._write_ahead = check_flag("write_ahead", write_ahead)
        self._durable = check_flag("durable", durable) or self._write_ahead
        # an insert takes half of memory at most, so the other half can queue meanwhile
        self._max_insert_spans = max(1, self._max_queue_spans // 2)
        home = check_directory("spool_dir", spool_dir)
        self._url = store_or_url if isinstance(store_or_url, str) else None
        self._store = None if isinstance(store_or_url, str) else store_or_url
        self._owned = OwnedSpool(Path(home) if home is not None else default_directory(*where))
        self._spool = Spool(self._owned.directory, max_spool_bytes)
        self._dead_letters = DeadLetters(self._owned.home / "dead-letter", max_spool_bytes)
        self._stats = ExporterStats()
        self._adopt()
        self._queue: deque[_Held] = deque()
        self._queued_spans = 0
        self._in_flight: _Held | None = None
        self._insert_started: float | None = None
        self._sequence = self._spool.next_sequence
        self._cond = threading.Condition()
        self._stopping = False
        self._failing = False
        self._warned = False
        self._flushes = 0
        self._flushing = 0
        self._ahead_since: float | None = None
        """When the oldest batch spooled ahead and not yet handed to an insert was spooled."""
        self._ahead_spans = 0
        self._ahead_last = 0.0
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._run, name="closedloop-exporter", daemon=True)
        self._guard = threading.Thread(
            target=self._guard_memory, name="closedloop-exporter-guard", daemon=True
        )
        self._writer.start()
        self._guard.start()

    @property
    def tables(self) -> tuple[str, ...]:
        """The trace tables every exported span is written to."""
        return self._tables

    @property
    def spool_directory(self) -> Path:
        """Where this exporter spools (a ``process-*`` directory when another live exporter
        owns the store's default one)."""
        return self._owned.directory

    @property
    def dead_letter_directory(self) -> Path:
        """Where rows the store refused are set aside."""
        return self._dead_letters.directory

    def _adopt(self) -> None:
        """Take over what earlier processes left: this directory's batches and those of
        orphaned per-process spools. Counted, and logged, because it is replayed late."""
        adopted = self._spool.spans
        for orphan in self._owned.orphans():
            adopted += self._spool.adopt(orphan)
        if adopted:
            self._stats.adopted_spans = adopted
            instruments.count_spans("adopted", adopted)
            health.count("store.spool.adopted_spans", adopted)
            logger.warning(
                "closedloop: %d spans spooled by an earlier process under %s will be replayed.",
                adopted,
                self._owned.home,
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_to(spans, self._tables)

    def export_to(self, spans: Sequence[ReadableSpan], tables: Sequence[str]) -> SpanExportResult:
        """Export ``spans`` to some of this exporter's tables only, with the same guarantees:
        a tail sampler sends every span to the recent tier and the kept ones to
        ``otel_traces``, through one exporter (one spool, one writer, in order)."""
        self._check_tables(tables)
        try:
            return self._export(spans, tuple(tables))
        except Exception as error:  # never into the SDK, never silent
            health.record_failure("store.export", error)
            self._count_dropped(len(spans), "an internal error (see closedloop.stats())")
            return SpanExportResult.FAILURE

    def export_rows(self, rows: Sequence[bytes], tables: Sequence[str]) -> SpanExportResult:
        """Export spans already mapped by ``encode_spans``, with ``export_to``'s guarantees:
        a receiver maps each span once, and writes the kept ones again without re-mapping."""
        self._check_tables(tables)
        try:
            return self._enqueue(b"".join(rows), len(rows), tuple(tables))
        except Exception as error:  # never into the caller, never silent
            health.record_failure("store.export", error)
            self._count_dropped(len(rows), "an internal error (see closedloop.stats())")
            return SpanExportResult.FAILURE

    def _check_tables(self, tables: Sequence[str]) -> None:
        unknown = [table for table in tables if table not in self._tables]
        if unknown:
            raise ValueError(f"tables={tuple(tables)!r}: this exporter writes {self._tables!r}.")

    def encode_spans(self, spans: Sequence[ReadableSpan]) -> list[bytes | None]:
        """Each span's ``JSONEachRow`` line; None (counted as dropped) for one that cannot
        be mapped, never failing the others."""
        resources = ResourceColumns()
        try:
            return [encode_row(span_row(span, resources)) for span in spans]
        except Exception:
            lines: list[bytes | None] = []
            for span in spans:
                try:
                    lines.append(encode_row(span_row(span, resources)))
                except Exception as error:
                    health.record_failure("store.export.map", error)
                    lines.append(None)
            self._count_dropped(lines.count(None), "a span could not be mapped to a row")
            return lines

    def _export(self, spans: Sequence[ReadableSpan], tables: tuple[str, ...]) -> SpanExportResult:
        if self._stopping:
            self._count_dropped(len(spans), "the exporter is shut down")
            return SpanExportResult.FAILURE
        rows = [line for line in self.encode_spans(spans) if line is not None]
        if not rows:
            return SpanExportResult.FAILURE if spans else SpanExportResult.SUCCESS
        return self._enqueue(b"".join(rows), len(rows), tables)

    def _enqueue(self, body: bytes, mapped: int, tables: tuple[str, ...]) -> SpanExportResult:
        """Queue ``mapped`` rows for ``tables``; for a durable exporter, wait until they are
        inserted or spooled."""
        if not mapped:
            return SpanExportResult.SUCCESS
        with self._cond:
            if self._stopping:  # shutdown began while this batch was being encoded
                self._count_dropped(mapped, "the exporter is shut down")
                return SpanExportResult.FAILURE
            now = time.monotonic()
            ticket = _Ticket(len(tables), now) if self._durable else None
            incoming = [
                _Held(
                    Batch(self._sequence + n, table, body, mapped, new_batch_id()),
                    now,
                    [ticket] if ticket is not None else [],
                )
                for n, table in enumerate(tables)
            ]
            self._sequence += len(incoming)
            if self._write_ahead:
                incoming = self._spool_ahead(incoming, now)
                if not incoming:
                    self._cond.notify_all()
                    return SpanExportResult.SUCCESS if ticket is None else self._await(ticket)
            if not self._make_room(mapped * len(incoming)):
                # memory is taken by the insert under way: the batch goes to the spool itself
                refused = self._spool_held(incoming)
                for held in refused:
                    self._resolve(held, SpanExportResult.FAILURE)
                    self._count_dropped(held.batch.spans, "memory and spool are full")
                self._cond.notify_all()
                return SpanExportResult.FAILURE if refused else SpanExportResult.SUCCESS
            self._queue.extend(incoming)
            self._queued_spans += mapped * len(incoming)
            if self._store_failing(now):
                self._spool_memory()
            self._cond.notify_all()
            return SpanExportResult.SUCCESS if ticket is None else self._await(ticket)

    def _await(self, ticket: _Ticket) -> SpanExportResult:
        """Wait (lock held) until every batch of a durable export is inserted, spooled or
        refused. Once it has waited ``spool_after_s`` (a slow or stuck insert), spool what
        memory has held that long: one group commit for every export waiting."""
        due = ticket.since + self._spool_after_s
        while ticket.pending:
            now = time.monotonic()
            if now < due:
                self._cond.wait(timeout=due - now)
            else:
                self._spool_memory(held_since=now - self._spool_after_s)
                due = now + self._spool_after_s
        return SpanExportResult.FAILURE if ticket.failed else SpanExportResult.SUCCESS

    def _spool_ahead(self, incoming: list[_Held], now: float) -> list[_Held]:
        """Write-ahead: spool ``incoming`` (which resolves their tickets); the batches the
        spool had no room for (lock held)."""
        rest = self._spool.append_all([held.batch for held in incoming])
        for held in incoming[:rest]:
            self._resolve(held, SpanExportResult.SUCCESS)
            self._ahead_spans += held.batch.spans
            self._ahead_last = now
            if self._ahead_since is None:
                self._ahead_since = now
        return incoming[rest:]

    def _linger(self) -> float:
        """Write-ahead: how long the writer should wait for more spooled batches before it
        inserts (lock held); 0 to insert now."""
        if (
            self._ahead_since is None
            or self._ahead_spans >= self._max_insert_spans
            or self._queue
            or self._stopping
            or self._flushing
        ):
            return 0.0
        until = min(
            self._ahead_since + WRITE_AHEAD_LINGER_S, self._ahead_last + WRITE_AHEAD_QUIET_S
        )
        return max(0.0, until - time.monotonic())

    def _store_failing(self, now: float) -> bool:
        """The last insert failed, or the current one has run too long (lock held)."""
        started = self._insert_started
        return self._failing or (started is not None and now - started > self._spool_after_s)

    def _make_room(self, incoming: int) -> bool:
        """When ``incoming`` spans do not fit in memory, spool every queued batch, a file per
        table (lock held): big files, one fsync each, and big inserts when replayed, where
        spooling just enough would write (and later insert) one small batch per export.
        An empty memory takes any batch, however large."""
        if self._held_spans() + incoming > self._max_queue_spans and self._queue:
            queued = [self._pop_queue() for _ in range(len(self._queue))]
            self._requeue(self._spool_held(_merged(queued)))
        return not self._held_spans() or self._held_spans() + incoming <= self._max_queue_spans

    def _held_spans(self) -> int:
        """Spans held only in memory: queued plus the batch being inserted (lock held)."""
        in_flight = self._in_flight.batch.spans if self._in_flight is not None else 0
        return self._queued_spans + in_flight

    def _pop_queue(self) -> _Held:
        held = self._queue.popleft()
        self._queued_spans -= held.batch.spans
        return held

    def _requeue(self, helds: Sequence[_Held]) -> None:
        """Put batches taken from the front of the queue back there, in order (lock held)."""
        self._queue.extendleft(reversed(helds))
        self._queued_spans += sum(held.batch.spans for held in helds)

    def _resolve(self, held: _Held, result: SpanExportResult) -> None:
        """``held`` is inserted or spooled (SUCCESS), or refused: tell the durable exports
        waiting for it, once (lock held)."""
        for ticket in held.tickets:
            ticket.pending -= 1
            ticket.failed = ticket.failed or result is SpanExportResult.FAILURE
        if held.tickets:
            held.tickets = []
            self._cond.notify_all()

    def _spool_held(self, helds: Sequence[_Held]) -> list[_Held]:
        """Spool ``helds`` with one directory fsync (lock held); those that did not fit."""
        written = self._spool.append_all([held.batch for held in helds])
        for held in helds[:written]:
            self._stats.spooled_spans_total += held.batch.spans
            instruments.count_spans("spooled", held.batch.spans)
            self._resolve(held, SpanExportResult.SUCCESS)
        return list(helds[written:])

    def _spool_memory(self, held_since: float = math.inf) -> None:
        """Move what memory has held since ``held_since`` or earlier to the spool, oldest
        first, merged per table, in one group commit (lock held). What does not fit stays
        when it was acknowledged; a durable export's batch is refused (FAILURE), since no
        caller may wait for ever."""
        in_flight = self._in_flight
        oldest = [in_flight] if in_flight is not None and in_flight.since <= held_since else []
        queued = []
        while self._queue and self._queue[0].since <= held_since:
            queued.append(self._pop_queue())
        rest = self._spool_held(oldest + _merged(queued))
        if in_flight is not None and oldest and in_flight not in rest:
            self._in_flight = None  # the spool has it; the insert under way settles there
        if not self._durable:
            self._requeue([held for held in rest if held is not in_flight])
            return
        for held in rest:
            if held is self._in_flight:
                self._in_flight = None
            self._resolve(held, SpanExportResult.FAILURE)
            self._count_dropped(held.batch.spans, "the store is failing and the spool is full")

    def _count_dropped(self, spans: int, why: str) -> None:
        if not spans:
            return
        with self._cond:
            self._stats.dropped_spans += spans
            first = self._stats.dropped_spans == spans
        instruments.count_spans("dropped", spans)
        health.count("store.dropped_spans", spans)
        if first:
            logger.error(
                "closedloop: dropping spans: %s (spool bound %d bytes under %s). "
                "Further drops are only counted: see ClickHouseSpanExporter.stats().",
                why,
                self._spool.max_bytes,
                self._owned.directory,
            )

    def _connected_store(self) -> Store:
        if self._store is None:
            assert self._url is not None
            self._store = connect(self._url)
        return self._store

    def _reset_connection(self) -> None:
        store, self._store = self._store, None
        try:
            if store is not None:
                store.close()
        except Exception as error:
            health.record_failure("store.exporter.close", error)

    def _write(self, batch: Batch) -> Batch | None:
        """Insert ``batch``. Rows the store refuses are found by bisection and set aside.
        None when every row is inserted or set aside, else the rows still to insert."""
        pending = deque([batch.body])
        while pending:
            body = pending.popleft()
            try:
                store = self._connected_store()
                store.insert_encoded(batch.table, body, token=_token(batch, body))
            except StoreDataError as error:
                rows = body.splitlines(keepends=True)
                if len(rows) == 1:
                    self._set_aside(batch.table, body, error)
                else:
                    half = len(rows) // 2
                    pending.extendleft((b"".join(rows[half:]), b"".join(rows[:half])))
                continue
            except Exception as error:
                self._insert_failed(error)
                if body is batch.body:
                    return batch
                rest = body + b"".join(pending)
                return Batch(batch.sequence, batch.table, rest, rest.count(b"\n"), batch.id)
            rows_inserted = body.count(b"\n")
            with self._cond:
                self._stats.exported_spans += rows_inserted
            instruments.count_spans("exported", rows_inserted)
        return None

    def _insert_failed(self, error: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("closedloop: insert into the store failed, will retry: %s", error)
        if self._url is not None:
            self._reset_connection()

    def _set_aside(self, table: str, row: bytes, error: StoreDataError) -> None:
        """A row the store refused goes to the dead letters (counted, logged once)."""
        try:
            kept = self._dead_letters.add(table, row, error)
        except OSError as failure:
            health.record_failure("store.dead_letter.write", failure)
            kept = False
        if not kept:
            self._count_dropped(1, "the store refused a row and the dead letters are full")
            return
        with self._cond:
            self._stats.rejected_spans += 1
            first = self._stats.rejected_spans == 1
        instruments.count_spans("rejected", 1)
        health.count("store.rejected_spans")
        if first:
            logger.error(
                "closedloop: the store refused a row; it is set aside in %s and later rows "
                "flow on. Further refusals are only counted: see "
                "ClickHouseSpanExporter.stats(). The store said: %s",
                self._dead_letters.directory,
                error,
            )

    def _next_batch(self) -> Batch | None:
        """The oldest pending batch, from memory or the spool (lock held)."""
        spooled = self._spool.head_sequence()
        if (
            self._in_flight is None
            and self._queue
            and (spooled is None or self._queue[0].batch.sequence < spooled)
        ):
            self._in_flight = self._take_queued(spooled)
        if self._in_flight is not None and (
            spooled is None or self._in_flight.batch.sequence < spooled
        ):
            return self._in_flight.batch
        self._ahead_spans, self._ahead_since = 0, None  # what the spool holds is being taken
        if not self._write_ahead:
            return self._spool.peek()
        held = [held.batch.sequence for held in self._queue]
        if self._in_flight is not None:
            held.append(self._in_flight.batch.sequence)
        return self._spool.peek(self._max_insert_spans, min(held, default=None))

    def _take_queued(self, before: int | None) -> _Held:
        """The oldest queued batch with the later ones for its table merged in, up to half
        of memory (lock held): exports that queued during one insert share the next. Only
        batches older than the spool's head (``before``) join, so replay order holds."""
        table = self._queue[0].batch.table
        taken: list[_Held] = []
        spans = 0
        kept: deque[_Held] = deque()
        for held in self._queue:
            joins = held.batch.table == table and (before is None or held.batch.sequence < before)
            if joins and taken and spans + held.batch.spans > self._max_insert_spans:
                before = held.batch.sequence  # full: later batches keep their order
                joins = False
            if joins:
                taken.append(held)
                spans += held.batch.spans
            else:
                kept.append(held)
        self._queue = kept
        self._queued_spans -= spans
        return _merged(taken)[0]

    def _settle(self, batch: Batch, remaining: Batch | None) -> None:
        """Record what an insert of ``batch`` achieved, wherever the batch now lives: in
        memory, or in the spool (read from there, or spooled while it was being inserted)."""
        if self._in_flight is not None and self._in_flight.batch is batch:
            if remaining is None:
                self._resolve(self._in_flight, SpanExportResult.SUCCESS)
                self._in_flight = None
            else:
                self._in_flight.batch = remaining
        if batch.sequence in self._spool:
            if remaining is None:
                self._spool.remove(batch.sequence)
            elif remaining is not batch:
                self._spool.replace(remaining)

    def _pending(self) -> bool:
        return bool(self._queue) or self._in_flight is not None or len(self._spool) > 0

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._pending() and not self._stopping:
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stopping and (failures or not self._pending()):
                    return
                while (linger := self._linger()) > 0:
                    self._cond.wait(timeout=linger)
            try:
                done = self._attempt()
            except Exception as error:
                health.record_failure("store.exporter.writer", error)
                done = False
            with self._cond:
                self._failing = not done
                if done:
                    failures = 0
                    continue
                failures += 1
                self._stats.failed_inserts += 1
                self._spool_memory()
            instruments.count_insert_failure()
            self._backoff(failures)

    def _attempt(self) -> bool:
        """Insert the oldest pending batch; whether it is done with (inserted or set aside)."""
        with self._cond:
            batch = self._next_batch()
            if batch is None:
                return True
            self._insert_started = time.monotonic()
        try:
            remaining = self._write(batch)
        finally:
            with self._cond:
                self._insert_started = None
        with self._cond:
            self._settle(batch, remaining)
        return remaining is None

    def _guard_memory(self) -> None:
        """Spool what memory has held longer than ``spool_after_s``: the writer may be
        stuck in an insert to a store that never answers."""
        while not self._closed.wait(min(1.0, self._spool_after_s / 2)):
            try:
                with self._cond:
                    self._spool_memory(time.monotonic() - self._spool_after_s)
            except Exception as error:
                health.record_failure("store.exporter.guard", error)

    def _backoff(self, failures: int) -> None:
        """Wait before the next attempt. New spans do not cut it short (that would hammer
        a store that is down); ``force_flush`` and ``shutdown`` do."""
        delay = min(self._retry_max_s, self._retry_initial_s * 2 ** min(failures - 1, 16))
        deadline = time.monotonic() + delay * random.uniform(0.5, 1.0)
        with self._cond:
            flushes = self._flushes
            while not self._stopping and self._flushes == flushes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(timeout=remaining)

    def stats(self) -> ExporterStats:
        with self._cond:
            self._stats.queued_spans = self._held_spans()
            self._stats.spool_spans = self._spool.spans
            self._stats.spool_bytes = self._spool.bytes
            return ExporterStats(**vars(self._stats))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything held and spooled is in the store (or the timeout)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            self._flushes += 1
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._pending() or self._insert_started is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(timeout=min(remaining, 0.05))
            finally:
                self._flushing -= 1
        return True

    def shutdown(self) -> None:
        """Flush briefly (unless the store is down), stop the threads, spool what memory
        still holds, give the spool directory up; close a store we opened."""
        with self._cond:
            failing = self._store_failing(time.monotonic())
        if not failing:
            self.force_flush(timeout_millis=5_000)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._closed.set()
        self._writer.join(timeout=10)
        self._guard.join(timeout=10)
        with self._cond:
            self._spool_memory()
            lost = 0 if self._writer.is_alive() else self._held_spans()
            if lost:  # the store is down and the spool full: say so, never silently
                self._queue.clear()
                self._queued_spans = 0
                self._in_flight = None
                self._count_dropped(lost, "shut down with the store down and the spool full")
        if not self._writer.is_alive():
            self._owned.release()
        if self._url is not None:
            self._reset_connection()
