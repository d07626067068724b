"""The tail sampler: buffer spans per trace, decide on a 1 s tick, remember decisions.

It keeps the collector's timing model so both decide on the same spans: a trace joins
the current batch when its first span arrives and is decided ``max(1, floor(decision_wait))``
ticks after the next tick. ``num_traces`` bounds memory (the oldest trace is evicted, even
undecided, and counted); decision caches (LRU, keyed like the collector's) let late spans
follow their trace's decision after it left memory.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable

from closedloop.sampling.config import SamplerConfig
from closedloop.sampling.policies import SAMPLED, combine
from closedloop.sampling.trace import SpanView, TraceState

Forward = Callable[[list[SpanView]], None]


class _DecisionCache:
    """LRU of decided trace ids; size 0 remembers nothing (the collector's no-op cache)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[int, None] = OrderedDict()

    @staticmethod
    def key(trace_id: int) -> int:
        return int.from_bytes(trace_id.to_bytes(16, "big")[8:], "little")

    def put(self, trace_id: int) -> None:
        if self.size <= 0:
            return
        key = self.key(trace_id)
        self._entries[key] = None
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __contains__(self, trace_id: int) -> bool:
        key = self.key(trace_id)
        if key in self._entries:
            self._entries.move_to_end(key)
            return True
        return False


class TailSampler:
    """Decides traces as the collector's tail_sampling processor does.

    ``ingest`` spans as they arrive; call ``tick`` once a second (``TailSamplingSpanProcessor``
    runs a thread for it). Spans of sampled traces, and late spans that follow a sampled
    decision, are handed to ``forward``. Thread-safe.
    """

    def __init__(self, config: SamplerConfig, forward: Forward) -> None:
        self.config = config
        self._forward = forward
        self._lock = threading.Lock()
        self._traces: dict[int, TraceState] = {}
        self._arrival: deque[int] = deque()
        self._current: list[int] = []
        self._pipeline: deque[list[int]] = deque([] for _ in range(config.decision_batches))
        self._sampled = _DecisionCache(config.sampled_cache_size)
        self._not_sampled = _DecisionCache(config.non_sampled_cache_size)
        self._caching = config.sampled_cache_size > 0 or config.non_sampled_cache_size > 0
        self.counts: Counter[str] = Counter()

    def ingest(self, spans: Iterable[SpanView]) -> None:
        forwarded: list[SpanView] = []
        with self._lock:
            for span in spans:
                self._ingest_one(span, forwarded)
        if forwarded:
            self._forward(forwarded)

    def _ingest_one(self, span: SpanView, forwarded: list[SpanView]) -> None:
        trace = self._traces.get(span.trace_id)
        if trace is None:
            if span.trace_id in self._sampled:
                self.counts["late_spans_sampled"] += 1
                forwarded.append(span)
                return
            if span.trace_id in self._not_sampled:
                self.counts["late_spans_dropped"] += 1
                return
            trace = self._admit(span.trace_id)
        elif trace.decision is not None:
            if trace.decision == SAMPLED:
                self.counts["late_spans_sampled"] += 1
                forwarded.append(span)
            else:
                self.counts["late_spans_dropped"] += 1
            return
        trace.spans.append(span)

    def _admit(self, trace_id: int) -> TraceState:
        while len(self._traces) >= self.config.num_traces and self._arrival:
            evicted = self._traces.pop(self._arrival.popleft(), None)
            if evicted is not None and evicted.decision is None:
                self.counts["traces_evicted_undecided"] += 1
        trace = TraceState(trace_id)
        self._traces[trace_id] = trace
        self._arrival.append(trace_id)
        self._current.append(trace_id)
        self.counts["traces_received"] += 1
        return trace

    def tick(self) -> int:
        """One decision tick; returns how many traces were decided."""
        forwarded: list[SpanView] = []
        with self._lock:
            due = self._pipeline.popleft()
            self._pipeline.append(self._current)
            self._current = []
            decided = sum(self._decide(trace_id, forwarded) for trace_id in due)
        if forwarded:
            self._forward(forwarded)
        return decided

    def _decide(self, trace_id: int, forwarded: list[SpanView]) -> bool:
        trace = self._traces.get(trace_id)
        if trace is None or trace.decision is not None:
            return False
        decision, _ = combine(self.config.policies, trace, self.config.sample_on_first_match)
        trace.decision = decision
        self.counts[f"traces_{decision}"] += 1
        if decision == SAMPLED:
            forwarded.extend(trace.spans)
        trace.spans = []
        if self._caching:
            (self._sampled if decision == SAMPLED else self._not_sampled).put(trace_id)
            del self._traces[trace_id]
            while self._arrival and self._arrival[0] not in self._traces:
                self._arrival.popleft()
        return True

    def drain(self) -> int:
        """Decide every pending trace now, on the spans it has (as the collector does at
        shutdown); returns how many were decided."""
        decided = 0
        for _ in range(self.config.decision_batches + 1):
            decided += self.tick()
        return decided

    @property
    def traces_in_memory(self) -> int:
        with self._lock:
            return len(self._traces)
