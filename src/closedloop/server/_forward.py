"""``--forward-otlp``: kept traces also go to another OTLP/HTTP backend (Jaeger, Tempo).

Off the request path and bounded, as the SDK's ``BatchSpanProcessor`` is, but not that
class: it skips every span whose trace flags lack SAMPLED, and received spans often carry
flags 0 (OTLP senders need not set them). A backend that is down or slow costs at most
``max_queue_spans`` spans of memory; the rest is dropped and counted, never queued.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Final

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from closedloop import _health as health

logger = logging.getLogger("closedloop.server")

MAX_QUEUE_SPANS: Final = 8192
"""Spans waiting for the backend; the SDK's ``BatchSpanProcessor`` default is 2048, but kept
traces arrive a tick's worth at a time."""
BATCH_SPANS: Final = 512
"""Spans per request, the SDK's ``BatchSpanProcessor`` default."""


class OtlpForwarder:
    """Sends spans to ``url`` (a full ``/v1/traces`` URL) from one background thread."""

    def __init__(self, url: str, *, max_queue_spans: int = MAX_QUEUE_SPANS) -> None:
        self.url = url
        self._exporter = OTLPSpanExporter(endpoint=url)
        self._max_queue_spans = max_queue_spans
        self._queue: deque[ReadableSpan] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.sent_spans = 0
        self.failed_spans = 0
        self.dropped_spans = 0
        self._thread = threading.Thread(target=self._run, name="closedloop-forward", daemon=True)
        self._thread.start()

    def submit(self, spans: Sequence[ReadableSpan]) -> None:
        """Queue what fits; drop (and count) the rest."""
        with self._cond:
            room = max(0, self._max_queue_spans - len(self._queue))
            self._queue.extend(spans[:room])
            dropped = len(spans) - min(room, len(spans))
            self.dropped_spans += dropped
            first = dropped > 0 and self.dropped_spans == dropped
            self._cond.notify_all()
        if first:
            logger.warning(
                "closedloop serve: the --forward-otlp queue to %s is full; dropping kept "
                "spans for it (the store still gets them). Further drops are only counted.",
                self.url,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(BATCH_SPANS, len(self._queue)))]
            try:
                result = self._exporter.export(batch)
            except Exception as error:  # the SDK exporter should not raise; never kill the thread
                health.record_failure("server.forward", error)
                result = SpanExportResult.FAILURE
            with self._cond:
                if result is SpanExportResult.SUCCESS:
                    self.sent_spans += len(batch)
                else:
                    self.failed_spans += len(batch)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout_s)
        self._exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it bare
