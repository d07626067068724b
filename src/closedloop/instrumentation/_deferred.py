"""Work that must not run inside ``__del__``: ending an abandoned stream's span.

The garbage collector can run ``__del__`` on any thread at any allocation, including while
that thread holds a lock that ending a span needs (closedloop's counters, a span processor,
an exporter's queue). ``queue.SimpleQueue.put`` is safe to call there; the work itself runs
on one daemon thread, started with the instrumentation.
"""

from __future__ import annotations

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

    def _run(self) -> None:
        while True:
            action = self._pending.get()
            try:
                action()
            except Exception as error:
                self._health.record_failure("deferred", error)
