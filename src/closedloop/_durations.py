"""Durations as people type them on a command line (``500ms``, ``30s``, ``5m``, ``12h``,
``3d``): one reading for every option that takes one, so ``--rescue-every`` and
``rescue --since`` agree on what ``30m`` means."""

from __future__ import annotations

import re
from typing import Final

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(text: str, *, unit_required: bool = False) -> float | None:
    """The duration ``text`` names in seconds (a bare number is seconds unless
    ``unit_required``), or None when it is not a duration."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or (unit_required and match[2] is None):
        return None
    return float(match[1]) * _SECONDS[match[2] or "s"]
