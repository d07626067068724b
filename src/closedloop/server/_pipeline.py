"""serve's pipeline: every accepted span to the recent tier, kept traces to ``otel_traces``.

What the collector's two pipelines do (``collector/otel-collector.yaml``), in one process on
closedloop's own parts: the ``ClickHouseSpanExporter`` (its span->row mapping, memory
queue, spool and retries), the ``TailSampler`` reading the same policy file, and
``closedloop.store.rescue`` on a schedule for feedback that came after its trace was dropped.

Not ``TailSamplingSpanProcessor``, though it wraps the same two: it buffers spans for the
recent tier until its next tick, without bound and without telling anyone when the
exporter refuses them. A receiver must answer each request with the exporter's verdict, so
``accept`` writes the request's spans to the recent tier itself and only then gives them to
the sampler; a refused request (memory and spool full) is the caller's 503, and a retry
cannot reach the sampler twice.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from closedloop import _health as health
from closedloop.sampling import SamplerCounts, SpanView, TailSampler, load
from closedloop.server._config import ServeConfig
from closedloop.server._forward import OtlpForwarder
from closedloop.server._logs import log_event
from closedloop.server._received import ReceivedSpan
from closedloop.store import (
    ClickHouseSpanExporter,
    ExporterStats,
    RescueResult,
    Store,
    StoreError,
    connect,
    rescue,
)

logger = logging.getLogger("closedloop.server")

RECENT_TIER: Final = "otel_traces_recent"
SAMPLED_TIER: Final = "otel_traces"
TICK_S: Final = 1.0
"""The collector's tail_sampling decision tick; ``decision_wait`` counts in these."""
FLUSH_TIMEOUT_MS: Final = 10_000
"""How long shutdown waits for the store to take what the drain decided."""


@dataclass(frozen=True)
class PipelineStats:
    """What the pipeline did since start (``/healthz`` and the stop log show it)."""

    spans_accepted: int
    spans_refused: int
    """Spans of requests refused with 503 because memory and spool were full."""
    spans_kept: int
    """Spans the sampler kept (and ``otel_traces`` was given)."""
    rescue_runs: int
    rescue_failures: int
    rescued_traces: int
    rescued_spans: int
    sampler: SamplerCounts
    exporter: ExporterStats
    forward: dict[str, int]
    """``sent``, ``failed``, ``dropped`` spans of ``--forward-otlp``; empty without it."""
    policies: tuple[str, ...] = ()
    """The sampler's top-level policies, in order: ``by_rule`` lists each, even at 0."""

    def by_rule(self) -> dict[str, dict[str, int]]:
        """Per policy, the traces it evaluated by its own decision (the decisions a policy
        gives, as the collector's ``count_traces_sampled`` names them), and its failures."""
        rows = {
            name: dict.fromkeys(("sampled", "not_sampled", "dropped"), 0) for name in self.policies
        }
        for (name, decision), n in self.sampler.policy_decisions.items():
            rows.setdefault(name, {})[decision.value] = n
        for name, row in rows.items():
            row["errors"] = self.sampler.policy_errors.get(name, 0)
        return rows

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: decisions by their names."""
        counts = self.sampler
        return {
            "spans_accepted": self.spans_accepted,
            "spans_refused": self.spans_refused,
            "spans_kept": self.spans_kept,
            "rescue": {
                "runs": self.rescue_runs,
                "failures": self.rescue_failures,
                "traces": self.rescued_traces,
                "spans": self.rescued_spans,
            },
            "sampler": {
                "traces_received": counts.traces_received,
                "traces_decided": {d.value: n for d, n in counts.traces_decided.items()},
                "late_spans": dict(counts.late_spans),
                "traces_evicted_undecided": counts.traces_evicted_undecided,
                "by_rule": self.by_rule(),
            },
            "store": asdict(self.exporter),
            "forward": self.forward,
        }


@dataclass(frozen=True)
class Acceptance:
    """What ``Pipeline.accept`` did with a request's spans."""

    refused: bool
    """Memory and spool are full: nothing was taken (the caller's 503)."""
    unmapped: int
    """Spans taken but not storable as rows (counted as dropped; the caller's rejected)."""


class Pipeline:
    """Opens the store (migrated), the exporter and the sampler; ``close`` drains them.

    Thread-safe: requests call ``accept`` from worker threads; a tick thread decides traces
    and a rescue thread repairs late feedback.
    """

    def __init__(self, config: ServeConfig) -> None:
        """Raises ``StoreLockedError`` (another process holds the chDB store), the store's
        migration errors, or ``SamplingConfigError`` for a policy it cannot decide by."""
        self._config = config
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._spans_accepted = 0
        self._spans_refused = 0
        self._spans_kept = 0
        self._rescue_runs = 0
        self._rescue_failures = 0
        self._rescued_traces = 0
        self._rescued_spans = 0
        self._rescue_since: datetime.datetime | None = None
        self._ticked_at = datetime.datetime.now(datetime.timezone.utc)
        self._left_pending = False
        sampler_config = load(config.policy)
        self._store = _open_store(config)
        try:
            # One chDB connection per process: the exporter shares serve's. A server's
            # exporter connects (and reconnects) on its own. Durable acknowledgement:
            # accept() returns once the rows are fsynced in the spool (written ahead),
            # which is what a 200 promises; the writer inserts them in large batches, and
            # replays after a crash are deduplicated.
            self._exporter = ClickHouseSpanExporter(
                self._store if config.embedded and self._store is not None else config.store_url,
                tables=(RECENT_TIER, SAMPLED_TIER),
                max_queue_spans=config.max_queue_spans,
                max_spool_bytes=config.max_spool_bytes,
                write_ahead=True,
            )
        except Exception:
            self._close_store()
            raise
        forward_url = config.forward_url
        self._forwarder = OtlpForwarder(forward_url) if forward_url is not None else None
        self.sampler = TailSampler(sampler_config, self._keep, max_spans=config.max_sampler_spans)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._every, args=(TICK_S, self._tick), daemon=True),
            threading.Thread(
                target=self._every, args=(config.rescue_every_s, self._rescue), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def forwards(self) -> bool:
        """Kept spans also go to ``--forward-otlp``, which sends SDK spans."""
        return self._forwarder is not None

    @property
    def spool_directory(self) -> str:
        """Where acknowledged spans go while the store does not take them."""
        return str(self._exporter.spool_directory)

    def accept(self, views: Sequence[SpanView]) -> bool:
        """Write the rows of ``views`` (each ``source`` a ``ReceivedSpan``) to the recent
        tier and give the views to the sampler; False, and the sampler never sees them,
        when the exporter refuses them (memory and spool full).

        Each span is mapped to its row once: a kept span's row goes to ``otel_traces`` as
        it is.
        """
        if not views:
            return True
        rows = [view.source.row for view in views if isinstance(view.source, ReceivedSpan)]
        if len(rows) != len(views):
            raise TypeError("Pipeline.accept takes views whose source is a ReceivedSpan.")
        if self._exporter.export_rows(rows, (RECENT_TIER,)) is not SpanExportResult.SUCCESS:
            with self._lock:
                self._spans_refused += len(views)
            return False
        with self._lock:
            self._spans_accepted += len(views)
        try:
            self.sampler.ingest(views)
        except Exception as error:  # stored in the recent tier already; the rescue can see it
            health.record_failure("server.sampling.ingest", error)
        return True

    def accept_spans(self, spans: Sequence[ReadableSpan]) -> Acceptance:
        """``accept`` for SDK spans (the feedback endpoint's). A span that cannot be mapped
        to a row is neither stored nor sampled: the exporter counts it as dropped, and the
        answer says how many, for the sender to hear."""
        lines = self._exporter.encode_spans(spans)
        views = [
            SpanView.of(span, ReceivedSpan(line, span))
            for span, line in zip(spans, lines, strict=True)
            if line
        ]
        return Acceptance(refused=not self.accept(views), unmapped=len(spans) - len(views))

    def _keep(self, views: list[SpanView]) -> None:
        """The sampler's forward: kept spans to ``otel_traces`` (and ``--forward-otlp``)."""
        kept = [view.source for view in views if isinstance(view.source, ReceivedSpan)]
        with self._lock:
            self._spans_kept += len(kept)
        # a refusal is counted as dropped by the exporter
        self._exporter.export_rows([item.row for item in kept], (SAMPLED_TIER,))
        if self._forwarder is not None:
            self._forwarder.submit([item.span for item in kept if item.span is not None])

    def _every(self, seconds: float, action: Callable[[], object]) -> None:
        while not self._stop.wait(seconds):
            action()

    def _tick(self) -> None:
        started = datetime.datetime.now(datetime.timezone.utc)
        try:
            self.sampler.tick()
        except Exception as error:
            health.record_failure("server.sampling.tick", error)
            return
        self._ticked_at = started  # its decisions are made and their rows handed over

    def rescue(self, since: datetime.datetime | None) -> RescueResult:
        """Copy the traces whose feedback arrived from ``since`` to ``settled_until()`` into
        ``otel_traces``, leaving the sampler's own (pending or kept) traces to it."""
        return rescue(self.store(), since, until=self.settled_until(), skip=self._sampler_writes)

    def _sampler_writes(self, trace_id: str) -> bool:
        state = self.sampler.trace_state(int(trace_id, 16))
        if state == "pending":
            self._left_pending = True
        return state in ("pending", "kept")

    def _rescue(self) -> None:
        """The scheduled rescue: from the end of the last run's window (the first run: the
        recent tier's whole retention); counted and logged.

        The next window starts where this one ended, unless a trace was left to the sampler
        undecided: if it is then dropped, the next run must still see its feedback. Copying
        is idempotent (spans ``otel_traces`` holds are not copied again), so a window
        covered twice costs a query, not a duplicate.
        """
        self._left_pending = False
        until = self.settled_until()
        try:
            result = self.rescue(self._rescue_since)
        except Exception as error:
            with self._lock:
                self._rescue_failures += 1
                first = self._rescue_failures == 1
            if first:
                log_event(logger, logging.WARNING, "serve.rescue.failed", error=str(error))
            if not self._config.embedded:
                self._close_store()
            return
        if not self._left_pending:
            self._rescue_since = until
        with self._lock:
            self._rescue_runs += 1
            self._rescued_traces += result.traces
            self._rescued_spans += result.spans
        if result.traces:
            log_event(
                logger, logging.INFO, "serve.rescue", traces=result.traces, spans=result.spans
            )

    def settled_until(self) -> datetime.datetime:
        """The latest feedback arrival a rescue may cover now.

        While the sampler runs, ``decision_wait`` and two ticks before now, and one tick
        before the start of the last tick that finished (a tick writing kept rows to a slow
        store lags behind the clock): feedback that came later may belong to a trace still
        waiting for its decision, which the sampler would write after the rescue copied it.
        Once ``close`` has stopped the threads and drained the sampler, nothing waits: now.
        Arrivals are stamped by the store's clock; on a ClickHouse server, keep it and
        serve's in sync (NTP), as the two-tick margin is all the skew this allows.
        """
        now = datetime.datetime.now(datetime.timezone.utc)
        if not any(thread.is_alive() for thread in self._threads):
            return now
        sampling = self.sampler.config
        wait = datetime.timedelta(
            seconds=max(sampling.decision_wait_s, sampling.decision_batches * TICK_S)
        )
        tick = datetime.timedelta(seconds=TICK_S)
        return min(now - wait - 2 * tick, self._ticked_at - wait - tick)

    def store(self) -> Store:
        """The embedded store itself; for a server, a connection of the rescue's and the
        query API's own (opened once, whichever thread asks first)."""
        with self._store_lock:
            if self._store is None:
                self._store = connect(self._config.store_url)
            return self._store

    def _close_store(self) -> None:
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def stats(self) -> PipelineStats:
        forwarder = self._forwarder
        with self._lock:
            return PipelineStats(
                spans_accepted=self._spans_accepted,
                spans_refused=self._spans_refused,
                spans_kept=self._spans_kept,
                rescue_runs=self._rescue_runs,
                rescue_failures=self._rescue_failures,
                rescued_traces=self._rescued_traces,
                rescued_spans=self._rescued_spans,
                sampler=self.sampler.counts,
                exporter=self._exporter.stats(),
                forward=(
                    {
                        "sent": forwarder.sent_spans,
                        "failed": forwarder.failed_spans,
                        "dropped": forwarder.dropped_spans,
                    }
                    if forwarder is not None
                    else {}
                ),
                policies=tuple(policy.name for policy in self.sampler.config.policies),
            )

    def close(self) -> None:
        """Decide every buffered trace on the spans it has (as the collector does at
        shutdown; the recent tier has them all, whatever the decision), flush the exporter,
        rescue once more if the store answers, then close the exporter and the store.
        What the store does not take in time stays in the spool for the next start."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        try:
            self.sampler.drain()
        except Exception as error:
            health.record_failure("server.sampling.drain", error)
        if self._exporter.force_flush(FLUSH_TIMEOUT_MS):
            self._rescue()
        if self._forwarder is not None:
            self._forwarder.shutdown()
        self._exporter.shutdown()
        self._close_store()


def _open_store(config: ServeConfig) -> Store | None:
    """The store, migrated. A ClickHouse server that does not answer yet is no reason to
    refuse spans (the collector starts too): serve then spools, and the exporter migrates
    the store when it first connects. None in that case."""
    if config.embedded:
        return connect(config.store_url)
    try:
        store = connect(config.store_url, migrate=False)
    except StoreError as error:
        log_event(
            logger,
            logging.WARNING,
            "serve.store.unreachable",
            error=str(error),
            effect="spans are spooled until the store answers",
        )
        return None
    try:
        store.migrate()  # an edited or newer schema is no reason to wait: refuse to start
    except Exception:
        store.close()
        raise
    return store
