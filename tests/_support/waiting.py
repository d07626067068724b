"""One way for tests to wait for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it is true. ``timeout`` only keeps a broken run from hanging
    for ever (generous, never what a test measures)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not reached in {timeout} s"
        time.sleep(0.02)
