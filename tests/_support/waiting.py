"""One way for tests to wait for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object], timeout: float = 30.0, message: str | None = None
) -> None:
    """Poll ``condition`` until it is true. ``timeout`` only keeps a broken run from hanging
    for ever (generous, never what a test measures); ``message`` says what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message or f"condition not reached in {timeout} s"
        time.sleep(0.02)
