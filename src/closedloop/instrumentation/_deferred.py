"""Work that must not run inside ``__del__``: ending an abandoned stream's span.

The garbage collector can run ``__del__`` on any thread at any allocation, including while
that thread holds a lock that ending a span needs (closedloop's counters, a span processor,
an exporter's queue). ``queue.SimpleQueue.put`` is safe to call there; the work itself runs
on one daemon thread, started with the instrumentation and again in a forked child (threads
do not survive ``fork``: without a new one, a child's abandoned streams would never end).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from closedloop._health_counters import Health


class DeferredWork:
    """A queue of actions and the one daemon thread that runs them."""

    def __init__(self, health: Health) -> None:
        self._health = health
        self._pending: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def start(self) -> None:
        """Start the worker (idempotent); called when instrumentation begins."""
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run, name="closedloop-deferred", daemon=True
                )
                self._worker.start()

    def defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the worker; safe from ``__del__`` (takes no lock)."""
        self._pending.put(action)

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """Block until everything deferred so far has run (tests, shutdown)."""
        done = threading.Event()
        self._pending.put(done.set)
        return done.wait(timeout_s)

    def _after_fork(self) -> None:
        """In a forked child: the parent's pending actions are the parent's (their spans
        would end twice), and its worker did not come along: a new queue, and a new worker
        if the parent had one."""
        self._pending = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        if self._worker is not None:
            self._worker = None
            self.start()

    def _run(self) -> None:
        pending = self._pending  # the queue of the process this worker was started in
        while True:
            action = pending.get()
            try:
                action()
            except Exception as error:
                self._health.record_failure("deferred", error)
