"""User journeys that should end in completion: finishing or dropping one is feedback.

A flow ("checkout", "refund_request") groups the LLM calls made along the way. Completing
it records ``time_to_completion_s`` on each of them; giving up, failing or timing out
records ``abandoned`` (Contract 2), so slow or dropped journeys point at the calls behind
them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from closedloop.feedback.implicit import _positive_finite
from closedloop.feedback.recorder import Recorded, record
from closedloop.feedback.targets import Target, resolve

logger = logging.getLogger("closedloop.feedback")

OPEN, COMPLETED, ABANDONED = "open", "completed", "abandoned"


class Flow:
    """One user journey and the calls made in it; it ends once, completed or abandoned.

    As a context manager it completes on normal exit and is abandoned when the block
    raises (the exception propagates).
    """

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"flow name must be a non-empty string, got {name!r}.")
        self.name = name
        self._clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self._calls: dict[Target, None] = {}
        self._state = OPEN

    @property
    def state(self) -> str:
        """``"open"``, ``"completed"`` or ``"abandoned"``."""
        return self._state

    @property
    def source(self) -> str:
        return f"flow:{self.name}"

    def add_call(self, target: Any) -> None:
        """Count the call ``target`` as part of this journey (a repeat is counted once)."""
        resolved = resolve(target)
        with self._lock:
            if self._state == OPEN:
                self._calls[resolved] = None
                return
        logger.debug("call added to %s flow %r after it ended; ignored", self._state, self.name)

    def complete(self) -> list[Recorded]:
        """Record ``time_to_completion_s`` (seconds since start) on every call of the flow."""
        calls = self._end(COMPLETED)
        if not calls:
            return []
        elapsed = self._clock() - self.started_at
        return self._record_all(calls, "time_to_completion_s", elapsed, None)

    def abandon(self, *, reason: str | None = None) -> list[Recorded]:
        """Record ``abandoned`` = 1 on every call; ``reason`` (e.g. "timeout") is the label."""
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise ValueError(f"abandon reason must be a non-empty string or None, got {reason!r}.")
        return self._abandon(reason) or []

    def _abandon(self, reason: str | None) -> list[Recorded] | None:
        """None when the flow had already ended, so the reaper counts only real abandons."""
        calls = self._end(ABANDONED)
        return None if calls is None else self._record_all(calls, "abandoned", 1, reason)

    def _end(self, state: str) -> list[Target] | None:
        """Move to ``state`` once: the calls to record on, or None if already ended."""
        with self._lock:
            if self._state != OPEN:
                return None
            self._state = state
            calls = list(self._calls)
            self._calls.clear()
        return calls

    def _record_all(
        self, calls: list[Target], name: str, value: float, label: str | None
    ) -> list[Recorded]:
        recorded = (
            record(call, name, value, label=label, kind="implicit", source=self.source)
            for call in calls
        )
        return [item for item in recorded if item is not None]

    def __enter__(self) -> Flow:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.complete()
        else:
            self.abandon(reason="exception")

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, state={self._state!r})"


class FlowTracker:
    """Starts flows and abandons those not completed within their timeout.

    One daemon thread sleeps until the earliest deadline (a heap; ended flows are skipped
    when their deadline comes up), so thousands of open flows cost no extra threads.
    Pass ``start_reaper=False`` and call ``reap()`` to drive timeouts yourself.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
        start_reaper: bool = True,
    ) -> None:
        _require_timeout(timeout_s)
        if not callable(clock):
            raise ValueError("clock must be a callable returning seconds, e.g. time.monotonic.")
        self._timeout_s = float(timeout_s)
        self._clock = clock
        self._wake = threading.Condition()
        self._deadlines: list[tuple[float, int, Flow]] = []
        self._order = itertools.count()
        self._closed = False
        self._thread: threading.Thread | None = None
        if start_reaper:
            self._thread = threading.Thread(
                target=self._run, name="closedloop-flow-reaper", daemon=True
            )
            self._thread.start()

    def start(self, name: str, user_id: str, *, timeout_s: float | None = None) -> Flow:
        """Begin a journey for ``user_id``; an open flow of the same name stays separate.

        ``timeout_s`` overrides the tracker's timeout for this flow.
        """
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"user_id must be a non-empty string, got {user_id!r}.")
        if timeout_s is not None:
            _require_timeout(timeout_s)
        started = Flow(name, clock=self._clock)
        deadline = started.started_at + (self._timeout_s if timeout_s is None else timeout_s)
        with self._wake:
            if self._closed:
                raise RuntimeError("FlowTracker is closed; create a new one to start flows.")
            heapq.heappush(self._deadlines, (deadline, next(self._order), started))
            if self._deadlines[0][2] is started:
                self._wake.notify()
        return started

    def reap(self, now: float | None = None) -> int:
        """Abandon every open flow whose deadline is at or before ``now`` (default: the
        clock); returns how many were abandoned."""
        now = self._clock() if now is None else now
        due: list[Flow] = []
        with self._wake:
            while self._deadlines and self._deadlines[0][0] <= now:
                due.append(heapq.heappop(self._deadlines)[2])
        return sum(1 for late in due if late._abandon("timeout") is not None)

    def close(self) -> None:
        """Stop the reaper thread; open flows are left as they are."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed:
                    return
                self._wake.wait(self._seconds_to_next_deadline())
                if self._closed:
                    return
            try:
                self.reap()
            except Exception:
                logger.exception("closedloop flow reaper failed to abandon timed-out flows")

    def _seconds_to_next_deadline(self) -> float | None:
        if not self._deadlines:
            return None
        return max(0.0, self._deadlines[0][0] - self._clock())


def _require_timeout(timeout_s: Any) -> None:
    if not _positive_finite(timeout_s):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}.")


_default_tracker: FlowTracker | None = None
_default_lock = threading.Lock()


def flow(name: str, user_id: str, *, timeout_s: float | None = None) -> Flow:
    """Start a flow on the process-wide tracker, created (with its reaper) on first use."""
    global _default_tracker
    with _default_lock:
        if _default_tracker is None:
            _default_tracker = FlowTracker()
        tracker = _default_tracker
    return tracker.start(name, user_id, timeout_s=timeout_s)
