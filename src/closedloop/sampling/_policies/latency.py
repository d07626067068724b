"""``latency``: traces longer than a threshold (the collector's ``latency.go``).

The window runs from the earliest start to the latest end of the spans seen so far and
is checked after each span in arrival order, so a bounded policy can sample on a prefix
of a trace that ends up longer than its upper bound, as the collector does.
"""

from __future__ import annotations

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import ReadsNoAttribute
from closedloop.sampling._trace import BufferedTrace


class Latency(ReadsNoAttribute):
    def __init__(self, name: str, threshold_ms: int, upper_threshold_ms: int) -> None:
        super().__init__(name)
        self.threshold_ms = threshold_ms
        self.upper_threshold_ms = upper_threshold_ms

    def evaluate(self, trace: BufferedTrace) -> Decision:
        earliest = latest = 0
        for span in trace.spans:
            if earliest == 0 or span.start_ns < earliest:
                earliest = span.start_ns
            if latest == 0 or span.end_ns > latest:
                latest = span.end_ns
            elapsed = latest - earliest
            # Go's Duration.Milliseconds(): truncated toward zero
            millis = abs(elapsed) // 1_000_000 * (1 if elapsed >= 0 else -1)
            if self.upper_threshold_ms == 0:
                if millis > self.threshold_ms:
                    return Decision.SAMPLED
            elif self.threshold_ms < millis <= self.upper_threshold_ms:
                return Decision.SAMPLED
        return Decision.NOT_SAMPLED


__all__ = ["Latency"]
