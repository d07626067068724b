"""What every redactor shares: the call signature, the result, span replacement, digit counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

TextRange = tuple[int, int]


class Redactor(Protocol):
    """Anything that redacts text: returns the new text and how many replacements it made."""

    def __call__(self, text: str) -> tuple[str, int]: ...


def reaches_fixpoint(redactor: Redactor) -> bool:
    """Whether running ``redactor`` on its own output is known to change nothing.

    The pipeline then skips re-running it after its own replacements; a redactor says so with
    a true ``reaches_fixpoint`` attribute.
    """
    return getattr(redactor, "reaches_fixpoint", False) is True


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """Redacted text plus the replacement count, which is recorded on the span."""

    text: str
    count: int


def replace_spans(text: str, spans: Iterable[TextRange], placeholder: str) -> tuple[str, int]:
    """Replace each span (in order, none overlapping) with ``placeholder``; count replacements.

    Text without a span comes back as the same object, so callers can compare it cheaply.
    """
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(placeholder)
        last = end
    if not parts:
        return text, 0
    count = len(parts) // 2  # each replacement added a kept slice and a placeholder
    parts.append(text[last:])
    return "".join(parts), count


_ASCII_DIGITS = b"0123456789"


def ascii_digit_count(ascii_text: bytes) -> int:
    """Digits in ``ascii_text``, in one C pass: far cheaper than scanning with a regex."""
    return len(ascii_text) - len(ascii_text.translate(None, _ASCII_DIGITS))
