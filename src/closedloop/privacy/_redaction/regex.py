"""User-defined redaction by regular expression, e.g. for employee or order ids."""

from __future__ import annotations

import re
from bisect import bisect_right

# A placeholder as the built-ins write it; user patterns never redact inside one.
_PLACEHOLDER = r"<[A-Z][A-Z0-9_]*>"


class RegexRedactor:
    """Replaces every match of ``pattern`` with ``placeholder``, e.g. for employee or order ids.

    Matches that overlap a placeholder (``<EMAIL>``-style, or this redactor's own) are left
    alone, so a broad pattern such as ``[A-Z]{5}`` cannot break earlier redactions and running
    the redactor twice is a no-op.
    """

    __slots__ = ("_pattern", "_placeholder", "_protected", "_template")

    def __init__(self, pattern: str | re.Pattern[str], placeholder: str) -> None:
        compiled = re.compile(pattern)
        if compiled.search("") is not None:
            raise ValueError(
                f"pattern {compiled.pattern!r} matches the empty string, so it would insert "
                "placeholders everywhere; make it require at least one character"
            )
        if not placeholder:
            raise ValueError("placeholder must be non-empty, e.g. '<EMPLOYEE_ID>'")
        self._pattern = compiled
        self._placeholder = placeholder
        self._template = placeholder.replace("\\", "\\\\")  # a literal for re.subn
        self._protected = re.compile(f"{_PLACEHOLDER}|{re.escape(placeholder)}")

    def __call__(self, text: str) -> tuple[str, int]:
        protected = [match.span() for match in self._protected.finditer(text)]
        if not protected:
            return self._pattern.subn(self._template, text)
        starts = [start for start, _ in protected]
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            start, end = match.span()
            before = bisect_right(starts, start) - 1  # last placeholder starting at or before
            if (before >= 0 and protected[before][1] > start) or (
                before + 1 < len(protected) and protected[before + 1][0] < end
            ):
                return match.group()
            count += 1
            return self._placeholder

        return self._pattern.sub(replace, text), count

    def __repr__(self) -> str:
        return f"RegexRedactor({self._pattern.pattern!r}, {self._placeholder!r})"
