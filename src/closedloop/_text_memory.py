"""Results remembered per recent text, in memory bounded whatever the texts.

Apps send the same texts again and again: a system prompt on every call, a conversation's
history on every turn. What is worked out from such a text (its redaction, its message
JSON) is remembered, in two bounded memories so that it stays at a few MB: many short
texts, few long ones. Longer texts are not kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

Result = TypeVar("Result")

SHORT_TEXT = 1_024
SHORT_ENTRIES = 2_048
LONG_TEXT = 32_768
LONG_ENTRIES = 64


class TextMemory(Generic[Result]):
    """``work(text, tag)`` for recent texts (``tag``: what else the result depends on, if
    anything)."""

    __slots__ = ("_long", "_short", "_work")

    def __init__(self, work: Callable[[str, str], Result]) -> None:
        self._work = work
        self._short = functools.lru_cache(maxsize=SHORT_ENTRIES)(work)
        self._long = functools.lru_cache(maxsize=LONG_ENTRIES)(work)

    def __call__(self, text: str, tag: str = "") -> Result:
        size = len(text)
        if size <= SHORT_TEXT:
            return self._short(text, tag)
        if size <= LONG_TEXT:
            return self._long(text, tag)
        return self._work(text, tag)
