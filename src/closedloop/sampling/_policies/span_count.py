"""``span_count``: traces with a number of spans in bounds, inclusive; a 0 maximum is
unbounded (the collector's ``span_count_sampler.go``)."""

from __future__ import annotations

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import ReadsNoAttribute, sampled_if
from closedloop.sampling._trace import BufferedTrace


class SpanCount(ReadsNoAttribute):
    def __init__(self, name: str, min_spans: int, max_spans: int) -> None:
        super().__init__(name)
        self.min_spans = min_spans
        self.max_spans = max_spans

    def evaluate(self, trace: BufferedTrace) -> Decision:
        count = len(trace.spans)
        if self.max_spans == 0:
            return sampled_if(count >= self.min_spans)
        return sampled_if(self.min_spans <= count <= self.max_spans)


__all__ = ["SpanCount"]
