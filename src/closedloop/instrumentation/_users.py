"""Per-user interaction counting, so sampling can keep every new user's first calls.

The counter is keyed by the user *hash*, never the raw id. The default lives in process
memory with an LRU bound; a multi-process deployment can plug in a shared store (Redis,
a database) by implementing ``InteractionCounter``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable


@runtime_checkable
class InteractionCounter(Protocol):
    """Counts LLM calls per user hash."""

    def increment(self, user_hash: str) -> int:
        """Record one more call for ``user_hash`` and return its 1-based count."""
        ...


class LRUInteractionCounter:
    """In-process counter bounded to ``max_users`` entries (least recently seen evicted).

    An evicted user counts from 1 again, i.e. looks new: with the default bound that
    only happens to users idle for longer than ``max_users`` other users' activity.
    """

    def __init__(self, max_users: int = 100_000) -> None:
        if max_users < 1:
            raise ValueError(f"max_users must be >= 1, got {max_users!r}.")
        self._max_users = max_users
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def increment(self, user_hash: str) -> int:
        with self._lock:
            count = self._counts.pop(user_hash, 0) + 1
            self._counts[user_hash] = count
            if len(self._counts) > self._max_users:
                self._counts.popitem(last=False)
                self.evictions += 1
            return count

    def __len__(self) -> int:
        return len(self._counts)
