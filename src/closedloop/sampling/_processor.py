"""``TailSamplingSpanProcessor``: closedloop's tail sampler inside an app, no collector.

Finished spans are buffered per trace; a background thread ticks once a second, decides
traces with the policies of the collector config, and exports the kept spans through the
wrapped exporter. Nothing runs on the app's thread but a dictionary append.

With closedloop's ``ClickHouseSpanExporter`` (default tables: both tiers) it does what the
collector's two pipelines do: every span to ``otel_traces_recent`` — which feeds the
metrics and the rescue — and the kept traces to the exporter's other tables.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from closedloop import _health as health
from closedloop._validation import require_positive_number, require_type
from closedloop.sampling._config import SamplerConfig, load
from closedloop.sampling._sampler import TailSampler
from closedloop.sampling._trace import SpanView
from closedloop.store._exporter import ClickHouseSpanExporter

RECENT_TIER = "otel_traces_recent"


class TailSamplingSpanProcessor(SpanProcessor):
    """Keeps what the collector would keep, exporting it through ``exporter``; a
    ``ClickHouseSpanExporter`` that writes the recent tier gets every span there."""

    def __init__(
        self,
        exporter: SpanExporter,
        config: SamplerConfig | str | Path,
        *,
        tick_seconds: float = 1.0,
    ) -> None:
        """``tick_seconds`` is the collector's 1 s decision tick; tests shorten it."""
        require_type("exporter", exporter, SpanExporter, "pass an OTel SDK SpanExporter.")
        require_type(
            "config", config, (SamplerConfig, str, Path), "pass closedloop.sampling.load(...)."
        )
        require_positive_number("tick_seconds", tick_seconds, "pass e.g. 1.0 seconds.")
        self._exporter = exporter
        self._outbox: list[ReadableSpan] = []
        # every finished span, for the recent tier, when the exporter writes one
        self._tiered = (
            exporter
            if isinstance(exporter, ClickHouseSpanExporter) and RECENT_TIER in exporter.tables
            else None
        )
        self._recent: list[ReadableSpan] = []
        self._outbox_lock = threading.Lock()
        settings = config if isinstance(config, SamplerConfig) else load(config)
        self.sampler = TailSampler(settings, self._queue)
        self._stop = threading.Event()
        self._tick_seconds = tick_seconds
        self._thread = threading.Thread(
            target=self._run, name="closedloop-tail-sampler", daemon=True
        )
        self._thread.start()

    def _queue(self, spans: list[SpanView]) -> None:
        with self._outbox_lock:
            self._outbox.extend(
                span.source for span in spans if isinstance(span.source, ReadableSpan)
            )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing: a trace is decided on finished spans only, as in the collector."""
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer the finished span for its trace's decision (and for the recent tier);
        never raises into the app, failures are counted in ``closedloop.stats()``."""
        try:
            if self._tiered is not None:
                with self._outbox_lock:
                    self._recent.append(span)
            self.sampler.ingest([SpanView.of(span)])
        except Exception as error:
            health.record_failure("sampling.ingest", error)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_seconds):
            self._step(self.sampler.tick)

    def _step(self, action: Callable[[], int]) -> None:
        try:
            action()
            self._export()
        except Exception as error:
            health.record_failure("sampling.tick", error)

    def _export(self) -> None:
        with self._outbox_lock:
            batch: Sequence[ReadableSpan] = self._outbox
            every: Sequence[ReadableSpan] = self._recent
            self._outbox = []
            self._recent = []
        if self._tiered is None:
            if batch:
                self._exporter.export(batch)
            return
        kept_tables = tuple(table for table in self._tiered.tables if table != RECENT_TIER)
        if every:
            self._tiered.export_to(every, (RECENT_TIER,))
        if batch and kept_tables:
            self._tiered.export_to(batch, kept_tables)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what has been decided so far (undecided traces keep waiting), and every
        span so far to the recent tier."""
        self._export()
        return self._exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Decide every pending trace on what it has, export, and stop."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._step(self.sampler.drain)
        self._exporter.shutdown()
