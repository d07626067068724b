"""The tail sampler: buffer spans per trace, decide on a 1 s tick, remember decisions.

It keeps the collector's timing model so both decide on the same spans: a trace joins
the current batch when its first span arrives and is decided ``max(1, floor(decision_wait))``
ticks after the next tick. ``num_traces`` bounds memory (the oldest trace is evicted, even
undecided, and counted); decision caches (LRU, keyed like the collector's) let late spans
follow their trace's decision after it left memory. A decided trace leaves memory only when
the cache for its decision stored it, as in the collector's ``releaseSampledTrace`` and
``releaseNotSampledTrace`` (processor.go): with one cache at size 0, traces given that
decision stay in memory, so their late spans still follow it, until ``num_traces`` evicts them.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Literal

from closedloop import _health as health
from closedloop._validation import require_callable, require_positive_int, require_type
from closedloop.sampling._combine import combine
from closedloop.sampling._config import SamplerConfig
from closedloop.sampling._counts import SamplerCounts, Tally
from closedloop.sampling._decision import Decision
from closedloop.sampling._metrics import Unpublished, publish
from closedloop.sampling._trace import BufferedTrace, SpanView

Forward = Callable[[list[SpanView]], None]
TraceState = Literal["pending", "kept", "dropped", "unknown"]
"""``TailSampler.trace_state``: what the sampler does with a trace's spans."""


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
    decision, are handed to ``forward``. ``counts`` says what it did; each tick adds it to
    closedloop's OTel metrics. Thread-safe.
    """

    def __init__(
        self, config: SamplerConfig, forward: Forward, *, max_spans: int | None = None
    ) -> None:
        """``max_spans`` bounds the spans held for undecided traces, which ``num_traces``
        (a count of traces) does not: past it, the oldest undecided traces are evicted as
        ``num_traces`` evicts them (counted), down to nine tenths of it."""
        require_type("config", config, SamplerConfig, "pass closedloop.sampling.load(...).")
        require_callable("forward", forward, "pass a function of a list of SpanView.")
        if max_spans is not None:
            require_positive_int("max_spans", max_spans, "pass e.g. 200_000, or None.")
        self.config = config
        self._max_spans = max_spans
        self._buffered_spans = 0
        self._forward = forward
        self._lock = threading.Lock()
        # Traces in memory in the order they were admitted: num_traces evicts the first, and
        # a trace that leaves memory leaves this order with it (the collector's
        # deleteTraceQueue), so a re-admitted trace is evicted as new, not as its old self.
        self._traces: OrderedDict[int, BufferedTrace] = OrderedDict()
        self._current: list[int] = []
        self._pipeline: deque[list[int]] = deque([] for _ in range(config.decision_batches))
        self._sampled = _DecisionCache(config.sampled_cache_size)
        self._not_sampled = _DecisionCache(config.non_sampled_cache_size)
        self._tally = Tally()
        self._unpublished = Unpublished(self._tally)
        # Counts taken since the last tick still reach the metrics once this sampler is
        # collected; not at exit, where a running tick may be changing them.
        weakref.finalize(self, self._unpublished.publish_collected).atexit = False

    @property
    def counts(self) -> SamplerCounts:
        """What this sampler has done so far, as a snapshot that later spans leave alone."""
        with self._lock:
            return self._tally.snapshot()

    def trace_state(self, trace_id: int) -> TraceState:
        """What this sampler does with the trace's spans: ``pending`` (buffered, undecided)
        and ``kept`` (sampled, cached) traces it forwards itself, ``dropped`` ones it
        discards, and of an ``unknown`` one it remembers nothing (never seen, or evicted).
        A late-feedback rescue beside it must leave the first two alone."""
        with self._lock:
            if trace_id in self._sampled:
                return "kept"
            if trace_id in self._not_sampled:
                return "dropped"
            trace = self._traces.get(trace_id)
            if trace is None:
                return "unknown"
            if trace.decision is None:
                return "pending"
            return "kept" if trace.decision is Decision.SAMPLED else "dropped"

    def ingest(self, spans: Iterable[SpanView]) -> None:
        """Take in finished spans: buffer them for their trace's decision, or, when the
        trace is already decided, forward them if it was sampled (late spans)."""
        forwarded: list[SpanView] = []
        with self._lock:
            for span in spans:
                self._ingest_one(span, forwarded)
        if forwarded:
            self._forward(forwarded)

    def _ingest_one(self, span: SpanView, forwarded: list[SpanView]) -> None:
        # The caches are asked before memory, as the collector's processCachedTrace is.
        if span.trace_id in self._sampled:
            self._tally.add_late_span(forwarded=True)
            forwarded.append(span)
            return
        if span.trace_id in self._not_sampled:
            self._tally.add_late_span(forwarded=False)
            return
        trace = self._traces.get(span.trace_id)
        if trace is None:
            trace = self._admit(span.trace_id)
        elif trace.decision is not None:
            follows = trace.decision is Decision.SAMPLED
            self._tally.add_late_span(forwarded=follows)
            if follows:
                forwarded.append(span)
            return
        trace.spans.append(span)
        self._buffered_spans += 1
        if self._max_spans is not None and self._buffered_spans > self._max_spans:
            self._shed(self._buffered_spans - self._max_spans * 9 // 10)

    def _shed(self, spans: int) -> None:
        """Evict the oldest undecided traces holding at least ``spans`` spans."""
        victims = []
        for trace_id, trace in self._traces.items():
            if spans <= 0:
                break
            if trace.decision is None:
                victims.append(trace_id)
                spans -= len(trace.spans)
        for trace_id in victims:
            self._buffered_spans -= len(self._traces.pop(trace_id).spans)
            self._tally.add_evicted_undecided()

    def _admit(self, trace_id: int) -> BufferedTrace:
        if self._traces and len(self._traces) >= self.config.num_traces:
            _, evicted = self._traces.popitem(last=False)
            if evicted.decision is None:
                self._buffered_spans -= len(evicted.spans)
                self._tally.add_evicted_undecided()
        trace = BufferedTrace(trace_id)
        self._traces[trace_id] = trace
        self._current.append(trace_id)
        self._tally.add_received()
        return trace

    def tick(self) -> int:
        """One decision tick; returns how many traces were decided."""
        forwarded: list[SpanView] = []
        with self._lock:
            due = self._pipeline.popleft()
            self._pipeline.append(self._current)
            self._current = []
            decided = sum(self._decide(trace_id, forwarded) for trace_id in due)
            counted = self._unpublished.take()
        publish(counted)
        if forwarded:
            self._forward(forwarded)
        return decided

    def _decide(self, trace_id: int, forwarded: list[SpanView]) -> bool:
        trace = self._traces.get(trace_id)
        if trace is None or trace.decision is not None:
            return False
        self._buffered_spans -= len(trace.spans)  # before a policy can break the trace
        # Each trace in its own guard: the batch has left the pipeline, so a failure that
        # escaped (a policy can break the trace it is given) would leave this trace and
        # the rest of the batch undecided for good. combine already absorbs raising policies.
        try:
            combined = combine(self.config.policies, trace, self.config.sample_on_first_match)
            decision = combined.decision
            if decision is Decision.SAMPLED:
                forwarded.extend(trace.spans)
        except Exception as error:
            health.record_failure("sampling.decide", error)
            decision = Decision.ERROR
        else:
            for policy, evaluated in combined.evaluations:
                if evaluated is Decision.ERROR:
                    self._tally.add_policy_error(policy)
                else:
                    self._tally.add_policy_decision(policy, evaluated)
        trace.decision = decision
        self._tally.add_decided(decision)
        trace.spans = []
        # The collector's release: Put into this decision's cache, then Get; only a hit
        # (a cache of size > 0) lets the trace leave memory. The other cache plays no part.
        cache = self._sampled if decision is Decision.SAMPLED else self._not_sampled
        cache.put(trace_id)
        if trace_id in cache:
            del self._traces[trace_id]
        return True

    def drain(self) -> int:
        """Decide every pending trace now, on the spans it has (as the collector does at
        shutdown); returns how many were decided."""
        decided = 0
        for _ in range(self.config.decision_batches + 1):
            decided += self.tick()
        return decided

    @property
    def spans_in_memory(self) -> int:
        """Spans held for undecided traces now; ``max_spans`` bounds it."""
        with self._lock:
            return self._buffered_spans

    @property
    def traces_in_memory(self) -> int:
        """Traces held in memory now, decided or not; ``num_traces`` bounds it."""
        with self._lock:
            return len(self._traces)
