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

from closedloop import health

_pending: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_start_lock = threading.Lock()
_worker: threading.Thread | None = None


def start() -> None:
    """Start the worker (idempotent); called when instrumentation begins."""
    global _worker
    with _start_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_run, name="closedloop-deferred", daemon=True)
            _worker.start()


def defer(action: Callable[[], None]) -> None:
    """Run ``action`` on the worker; safe from ``__del__`` (takes no lock)."""
    _pending.put(action)


def wait_idle(timeout_s: float = 5.0) -> bool:
    """Block until everything deferred so far has run (tests, shutdown)."""
    done = threading.Event()
    _pending.put(done.set)
    return done.wait(timeout_s)


def _run() -> None:
    while True:
        action = _pending.get()
        try:
            action()
        except Exception as error:
            health.record_failure("deferred", error)
