"""Token buckets per caller (an API key, a remote address), in a map of bounded size.

Only the ``max_keys`` most recently seen callers keep a bucket: a flood of new addresses
evicts the least recently seen one, whose bucket has had the longest time to refill, so
memory stays bounded and an idle caller loses nothing but an already full bucket.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from closedloop.server._feedback_settings import Rate


class RateLimiter:
    """``take(caller, now)``: 0 when the caller may go now, else the seconds to wait."""

    def __init__(self, rate: Rate, max_keys: int) -> None:
        self._rate = rate
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self._lock = threading.Lock()

    def take(self, caller: str, now: float) -> float:
        """Spend one token of ``caller``'s bucket, or say how long until one is there."""
        rate = self._rate
        with self._lock:
            tokens, updated = self._buckets.pop(caller, (float(rate.burst), now))
            # A clock that steps back refills nothing rather than draining the bucket.
            tokens = min(float(rate.burst), tokens + max(0.0, now - updated) * rate.per_second)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate.per_second
            self._buckets[caller] = (tokens - 1 if wait == 0 else tokens, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)
