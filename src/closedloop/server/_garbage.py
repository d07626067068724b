"""serve's garbage-collection settings, for its own process and its mapping workers."""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 70_000
"""Allocations between young-generation collections (Python's default: 700)."""


def collect_garbage_less() -> None:
    """Run the cyclic garbage collector a hundred times less often than Python's default.

    A received span makes dozens of containers (attribute dicts, the row, the view) and
    the sampler holds a trace's views for ``decision_wait``: at the default thresholds a
    collection runs every few spans and keeps walking the sampler's buffer, which measured
    a third of serve's Python time. The pipeline's objects are freed by reference counting
    (they hold no cycles), so rarer collections cost little memory. What serve loaded
    before the first request is frozen: no collection needs to look at it again.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
