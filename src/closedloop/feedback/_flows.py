"""User journeys that should end in completion: finishing or dropping one is feedback.

A flow ("checkout", "refund_request") groups the LLM calls made along the way. Completing
it records ``time_to_completion_s`` on each of them; giving up, failing or timing out
records ``abandoned`` (Contract 2), so slow or dropped journeys point at the calls behind
them.

Flows take no user id: their feedback lands on calls, and each call already carries its
user's ``user.hash`` (from ``closedloop.context(user_id=...)``), which is where the store's
``feedback`` view reads the user from. Contract 2 gives feedback spans no user attribute.
"""

from __future__ import annotations

import atexit
import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

from closedloop._validation import (
    require_callable,
    require_non_empty_str,
    require_positive_number,
    require_type,
)
from closedloop.feedback._recorder import Recorded, record
from closedloop.feedback._targets import FeedbackTarget, Target, resolve

logger = logging.getLogger("closedloop.feedback")

FlowState = Literal["open", "completed", "abandoned"]


class Flow:
    """One user journey and the calls made in it; it ends once, completed or abandoned.

    As a context manager it completes on normal exit and is abandoned when the block
    raises (the exception propagates). ``on_end`` is called once when it ends (the
    tracker uses it to stop reaping when no flow is open).
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_end: Callable[[Flow], None] | None = None,
    ) -> None:
        require_non_empty_str("name", name, 'name the journey, e.g. "checkout".')
        self.name = name
        self._clock = clock
        self._on_end = on_end
        self.started_at = clock()
        self._lock = threading.Lock()
        self._calls: dict[Target, None] = {}
        self._state: FlowState = "open"

    @property
    def state(self) -> FlowState:
        """``"open"``, ``"completed"`` or ``"abandoned"``."""
        return self._state

    @property
    def source(self) -> str:
        return f"flow:{self.name}"

    def add_call(self, target: FeedbackTarget) -> None:
        """Count the call ``target`` as part of this journey (a repeat is counted once)."""
        resolved = resolve(target)
        with self._lock:
            if self._state == "open":
                self._calls[resolved] = None
                return
        logger.debug("call added to %s flow %r after it ended; ignored", self._state, self.name)

    def complete(self) -> list[Recorded]:
        """Record ``time_to_completion_s`` (seconds since start) on every call of the flow."""
        calls = self._end("completed")
        if not calls:
            return []
        elapsed = self._clock() - self.started_at
        return self._record_all(calls, "time_to_completion_s", elapsed, None)

    def abandon(self, *, reason: str | None = None) -> list[Recorded]:
        """Record ``abandoned`` = 1 on every call; ``reason`` (e.g. "timeout") is the label."""
        if reason is not None:
            require_non_empty_str("reason", reason, 'pass a short label such as "timeout".')
        return self._abandon(reason) or []

    def _abandon(self, reason: str | None) -> list[Recorded] | None:
        """None when the flow had already ended, so the reaper counts only real abandons."""
        calls = self._end("abandoned")
        return None if calls is None else self._record_all(calls, "abandoned", 1, reason)

    def _end(self, state: FlowState) -> list[Target] | None:
        """Move to ``state`` once: the calls to record on, or None if already ended."""
        with self._lock:
            if self._state != "open":
                return None
            self._state = state
            calls = list(self._calls)
            self._calls.clear()
        if self._on_end is not None:
            self._on_end(self)
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

    A daemon thread runs only while flows are open: it starts with the first open flow,
    sleeps until the earliest deadline (a heap; ended flows are skipped when their
    deadline comes up), and exits when the last open flow ends, so an idle tracker holds
    no thread and nothing needs stopping. Pass ``start_reaper=False`` to never start it and
    call ``reap()`` to drive timeouts yourself.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
        start_reaper: bool = True,
    ) -> None:
        _require_timeout(timeout_s)
        require_callable("clock", clock, "pass a function returning seconds, e.g. time.monotonic.")
        require_type("start_reaper", start_reaper, bool, "pass True or False.")
        self._timeout_s = float(timeout_s)
        self._clock = clock
        self._start_reaper = start_reaper
        self._wake = threading.Condition()
        self._deadlines: list[tuple[float, int, Flow]] = []
        self._order = itertools.count()
        self._open = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self, name: str, *, timeout_s: float | None = None) -> Flow:
        """Begin a journey; an open flow of the same name stays separate.

        ``timeout_s`` overrides the tracker's timeout for this flow.
        """
        if timeout_s is not None:
            _require_timeout(timeout_s)
        started = Flow(name, clock=self._clock, on_end=self._ended)
        deadline = started.started_at + (self._timeout_s if timeout_s is None else timeout_s)
        with self._wake:
            if self._closed:
                raise RuntimeError("FlowTracker is closed; create a new one to start flows.")
            heapq.heappush(self._deadlines, (deadline, next(self._order), started))
            self._open += 1
            if self._start_reaper and self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="closedloop-flow-reaper", daemon=True
                )
                self._thread.start()
            elif self._deadlines[0][2] is started:
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

    @property
    def open_flows(self) -> int:
        """How many flows started here have not ended yet."""
        with self._wake:
            return self._open

    def close(self) -> None:
        """Stop the reaper thread, if one runs; open flows are left as they are."""
        with self._wake:
            self._closed = True
            thread = self._thread
            self._wake.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _ended(self, flow: Flow) -> None:
        with self._wake:
            self._open -= 1
            if self._open == 0:
                self._deadlines.clear()  # only ended flows are left
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed or self._open == 0:
                    self._thread = None
                    return
                self._wake.wait(self._seconds_to_next_deadline())
                if self._closed:
                    self._thread = None
                    return
            try:
                self.reap()
            except Exception:
                logger.exception("closedloop flow reaper failed to abandon timed-out flows")

    def _seconds_to_next_deadline(self) -> float | None:
        if not self._deadlines:
            return None
        return max(0.0, self._deadlines[0][0] - self._clock())


def _require_timeout(timeout_s: float) -> None:
    """Positive, and short enough for the reaper thread to wait on (a longer wait would
    raise OverflowError in that thread and leave flows unreaped)."""
    fix = "pass a number of seconds, e.g. 1800."
    require_positive_number("timeout_s", timeout_s, fix)
    if timeout_s > threading.TIMEOUT_MAX:
        raise ValueError(
            f"timeout_s={timeout_s!r} is longer than a thread can wait "
            f"({threading.TIMEOUT_MAX:.0f} s); {fix}"
        )


_default_lock = threading.Lock()


def _default_tracker() -> FlowTracker:
    with _default_lock:  # one tracker even when the first flows start concurrently
        return _make_default_tracker()


@functools.cache
def _make_default_tracker() -> FlowTracker:
    """The process-wide tracker, created on first use and closed at exit."""
    tracker = FlowTracker()
    atexit.register(tracker.close)
    return tracker


def flow(name: str, *, timeout_s: float | None = None) -> Flow:
    """Start a flow on the process-wide tracker: abandoned after ``timeout_s`` (default
    30 minutes) unless completed. Its reaper thread runs only while flows are open."""
    return _default_tracker().start(name, timeout_s=timeout_s)
