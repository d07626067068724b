r"""The engine of the built-in redactors: a cheap pre-check, a candidate regex, then validation.

A regex scan that cannot skip ahead by a literal costs about 5 µs per KB, so the built-ins'
patterns start with a literal (found at memchr speed) where they can, and otherwise run only
after a cheap pre-check. Patterns check what precedes their first character with a width-2
lookbehind placed after it (``x(?<!\w.)``): a leading lookbehind would make ``re`` try every
position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from closedloop.privacy._redaction.base import Redactor, TextRange, replace_spans

SpanFinder = Callable[[re.Match[str]], Iterable[TextRange]]


class BuiltInRedactor:
    """A named built-in; the name is what the pipeline's ``repr`` shows."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<built-in redactor {self._name}>"


class CandidateRedactor(BuiltInRedactor):
    """Finds candidates with a regex and replaces the spans that ``spans`` keeps of each.

    ``spans`` maps a candidate match to the absolute spans to replace (none when validation
    fails).
    """

    __slots__ = ("_candidates", "_placeholder", "_precheck", "_spans")

    def __init__(
        self,
        name: str,
        candidates: re.Pattern[str],
        placeholder: str,
        spans: SpanFinder,
        *,
        precheck: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(name)
        self._candidates = candidates
        self._placeholder = placeholder
        self._spans = spans
        self._precheck = precheck

    def __call__(self, text: str) -> tuple[str, int]:
        if self._precheck is not None and not self._precheck(text):
            return text, 0
        # No candidate is the common case: answer it without setting up the replacement.
        first = self._candidates.search(text)
        if first is None:
            return text, 0
        return replace_spans(text, self._spans_to_replace(text, first), self._placeholder)

    def _spans_to_replace(self, text: str, first: re.Match[str]) -> Iterator[TextRange]:
        """Spans to replace, starting with those of the ``first`` candidate."""
        match: re.Match[str] | None = first
        last_end = 0
        while match is not None:
            for span in self._spans(match):
                yield span
                last_end = span[1]
            # Resume after the last replacement: it can end before the candidate does (an IBAN
            # that swallowed the next word), and what follows may start another entity.
            match = self._candidates.search(
                text, last_end if last_end > match.start() else match.end()
            )


class RedactorChain(BuiltInRedactor):
    """Several redactors sharing one placeholder, exposed as one (e.g. IPv6 then IPv4)."""

    __slots__ = ("_parts",)

    def __init__(self, name: str, *parts: Redactor) -> None:
        super().__init__(name)
        self._parts = parts

    def __call__(self, text: str) -> tuple[str, int]:
        total = 0
        for part in self._parts:
            text, count = part(text)
            total += count
        return text, total


def entire_match(match: re.Match[str]) -> tuple[TextRange]:
    """For candidates that need no validation."""
    return (match.span(),)


def entire_match_if(valid: Callable[[str], bool]) -> SpanFinder:
    """For validators that accept or reject a candidate as a whole."""

    def spans(match: re.Match[str]) -> tuple[TextRange, ...]:
        return (match.span(),) if valid(match.group()) else ()

    return spans
