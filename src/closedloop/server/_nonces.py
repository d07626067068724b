"""Single use for feedback tokens: a bounded record of used tokens that survives restarts.

A token copied from a page (or a request replayed from a log) must not count twice, and a
restart of ``closedloop serve`` must not reopen every token used before it. Each use is a
line ``<key> <expiry>`` appended and fsynced before the feedback is accepted; a use the
pipeline then refuses is released by a line with expiry 0 (the last line for a key wins).
An entry is needed only until its token expires, so the file is rewritten without expired
entries once they make up half of it, and at every start (which also drops a line torn by
a crash: that request was never answered).

The store holds at most ``capacity`` live entries. When it is full it refuses new tokens
(``NonceStoreFull``, with the time until the next entry expires) rather than forget a live
one, which would let that token be replayed.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
from pathlib import Path

from closedloop._errors import ClosedloopError

logger = logging.getLogger("closedloop.server")

# Below this many lines the file is small enough that rewriting it would gain nothing.
_MIN_COMPACT_LINES = 1024


class NonceStoreFull(ClosedloopError, RuntimeError):
    """Every slot holds a token that has not expired yet; retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many feedback tokens in use; the next slot frees in {retry_after_s:.0f} s"
        )
        self.retry_after_s = retry_after_s


class NonceStore:
    """Used tokens (by key) until their expiry, in memory and in an fsynced file at ``path``."""

    def __init__(self, path: Path, capacity: int, *, now: float) -> None:
        self._path = path
        self._capacity = capacity
        self._lock = threading.Lock()
        self._live: dict[str, int] = {}
        self._expiries: list[tuple[int, str]] = []  # heap; stale pairs are skipped
        self._lines = 0
        self._load(now)

    def __len__(self) -> int:
        return len(self._live)

    def claim(self, key: str, expires_at: float, now: float) -> bool:
        """Mark ``key`` used until ``expires_at``: False if it already is (a replay).

        Raises NonceStoreFull rather than evict a live key."""
        with self._lock:
            self._drop_expired(now)
            if key in self._live:
                return False
            if len(self._live) >= self._capacity:
                raise NonceStoreFull(max(1.0, self._expiries[0][0] - now))
            expiry = math.ceil(expires_at)
            self._append(key, expiry)
            self._live[key] = expiry
            heapq.heappush(self._expiries, (expiry, key))
            if self._lines >= 2 * max(len(self._live), _MIN_COMPACT_LINES):
                self._rewrite()
            return True

    def release(self, key: str) -> None:
        """Undo a claim whose feedback was not accepted, so the token can be sent again."""
        with self._lock:
            if self._live.pop(key, None) is not None:
                self._append(key, 0)

    def _drop_expired(self, now: float) -> None:
        """Forget expired keys, and heap pairs of released keys (each pair is popped once,
        so this costs O(log n) per claim over time)."""
        heap = self._expiries
        while heap and (heap[0][0] <= now or self._live.get(heap[0][1]) != heap[0][0]):
            expiry, key = heapq.heappop(heap)
            if self._live.get(key) == expiry:
                del self._live[key]

    def _append(self, key: str, expiry: int) -> None:
        with self._path.open("ab") as file:
            file.write(f"{key} {expiry}\n".encode("ascii"))
            file.flush()
            os.fsync(file.fileno())
        self._lines += 1

    def _load(self, now: float) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            data = b""
        complete, _, torn = data.rpartition(b"\n")
        if torn:
            logger.info("feedback nonce file %s: dropped a line torn by a crash", self._path)
        for line in complete.splitlines():
            key, _, expiry = line.decode("ascii", "replace").partition(" ")
            if not key or not expiry.isdigit():
                logger.warning("feedback nonce file %s: skipped a malformed line", self._path)
                continue
            if int(expiry) > now:
                self._live[key] = int(expiry)
            else:
                self._live.pop(key, None)
        self._rewrite()

    def _rewrite(self) -> None:
        """Replace the file with the live entries (atomically: a crash leaves old or new)."""
        self._expiries = [(expiry, key) for key, expiry in self._live.items()]
        heapq.heapify(self._expiries)
        temporary = self._path.with_name(self._path.name + ".tmp")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as file:
            file.writelines(
                f"{key} {expiry}\n".encode("ascii") for key, expiry in self._live.items()
            )
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._lines = len(self._live)
