r"""The engine of the built-in redactors: a cheap pre-check, a candidate regex, then validation.

A regex scan that cannot skip ahead by a literal costs about 5 µs per KB, so the built-ins'
patterns start with a literal (found at memchr speed) where they can, and every one runs only
after a pre-check (see :mod:`._detector`). Patterns check what precedes their first
character with a width-2 lookbehind placed after it (``x(?<!\w.)``): a leading lookbehind
would make ``re`` try every position. An entity that is its whole candidate is replaced in
one ``re.sub`` pass, which costs one Python call per candidate and nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from closedloop.privacy._redaction._detector import (
    Counts,
    Detector,
    Precheck,
    counts_of,
)
from closedloop.privacy._redaction._zones import Zones
from closedloop.privacy._redaction.base import Redactor, TextRange, replace_spans

SpanFinder = Callable[[re.Match[str]], Sequence[TextRange]]
# What replaces a candidate match, or None to keep it.
Replacement = Callable[[re.Match[str]], str | None]


class BuiltInRedactor(Detector):
    """A named built-in; the name is what the pipeline's ``repr`` shows."""

    __slots__ = ("_name",)

    def __init__(
        self, name: str, precheck: Precheck, *, reads_counts: bool = True, min_digits: int = 0
    ) -> None:
        super().__init__(precheck, reads_counts=reads_counts, min_digits=min_digits)
        self._name = name

    def __repr__(self) -> str:
        return f"<built-in redactor {self._name}>"


class _PartialCandidate(Exception):
    """A candidate of which only part is replaced: ``re.sub`` cannot resume inside it."""


class CandidateRedactor(BuiltInRedactor):
    """Finds candidates with a regex and replaces the spans that ``spans`` keeps of each.

    ``spans`` maps a candidate match to the absolute spans to replace (none when validation
    fails). With ``zones``, only those are searched in ASCII text (see :mod:`._zones`).
    """

    __slots__ = ("_candidates", "_placeholder", "_spans", "_zones")

    def __init__(
        self,
        name: str,
        candidates: re.Pattern[str],
        placeholder: str,
        spans: SpanFinder,
        *,
        precheck: Precheck,
        min_digits: int = 0,
        zones: Zones | None = None,
    ) -> None:
        super().__init__(name, precheck, min_digits=min_digits)
        self._candidates = candidates
        self._placeholder = placeholder
        self._spans = spans
        self._zones = zones

    def detect(self, text: str) -> tuple[str, int]:
        zones = None if self._zones is None else self._zones.of(text)
        if zones is not None:
            return replace_spans(text, self._spans_in_zones(text, zones), self._placeholder)
        # Nearly every candidate is replaced whole or kept whole, which one ``re.sub`` does
        # with one Python call per candidate; the rare other kind needs the search loop.
        try:
            return self._substitute(text)
        except _PartialCandidate:
            found: list[TextRange] = []
            self._add_spans(text, self._candidates.search(text), len(text), found)
            return replace_spans(text, found, self._placeholder)

    def _spans_in_zones(self, text: str, zones: list[TextRange]) -> list[TextRange]:
        """The spans to replace, searched for in ``zones`` of ``text``."""
        found: list[TextRange] = []
        search = self._candidates.search
        for start, end in zones:
            match = search(text, start, end)
            if match is not None:
                self._add_spans(text, match, end, found)
        return found

    def _substitute(self, text: str) -> tuple[str, int]:
        """Replace whole candidates; raises :class:`_PartialCandidate` at any other kind."""
        replaced = 0
        spans, placeholder = self._spans, self._placeholder

        def substitute(match: re.Match[str]) -> str:
            nonlocal replaced
            kept = spans(match)
            if not kept:
                return match.group()
            if len(kept) != 1 or kept[0] != match.span():
                raise _PartialCandidate
            replaced += 1
            return placeholder

        redacted = self._candidates.sub(substitute, text)
        return (redacted, replaced) if replaced else (text, 0)

    def _add_spans(
        self, text: str, match: re.Match[str] | None, end: int, found: list[TextRange]
    ) -> None:
        """Add the spans to replace from ``match`` to ``end``, searching again after each
        candidate's last one."""
        last_end = 0
        while match is not None:
            for span in self._spans(match):
                found.append(span)
                last_end = span[1]
            # Resume after the last replacement: it can end before the candidate does (an IBAN
            # that swallowed the next word), and what follows may start another entity.
            match = self._candidates.search(
                text, last_end if last_end > match.start() else match.end(), end
            )


class SubstitutingRedactor(BuiltInRedactor):
    """Replaces each candidate with what ``replacement`` makes of it, if anything.

    For entities whose replacement stays within their candidate, so the search can go on
    after each candidate as ``re.sub`` does. A string ``replacement`` replaces every
    candidate, by ``re`` alone: for patterns that match only entities; with ``zones``, only
    those are searched in ASCII text (see :mod:`._zones`).
    """

    __slots__ = ("_candidates", "_replacement", "_zones")

    def __init__(
        self,
        name: str,
        candidates: re.Pattern[str],
        replacement: Replacement | str,
        *,
        precheck: Precheck,
        min_digits: int = 0,
        zones: Zones | None = None,
    ) -> None:
        if zones is not None and not isinstance(replacement, str):
            raise TypeError("zones need a string replacement")
        super().__init__(name, precheck, min_digits=min_digits)
        self._candidates = candidates
        self._replacement = replacement
        self._zones = zones

    def detect(self, text: str) -> tuple[str, int]:
        zones = None if self._zones is None else self._zones.of(text)
        if zones is not None and isinstance(self._replacement, str):
            finditer = self._candidates.finditer
            spans = [match.span() for start, end in zones for match in finditer(text, start, end)]
            return replace_spans(text, spans, self._replacement)
        if isinstance(self._replacement, str):
            redacted, count = self._candidates.subn(self._replacement, text)
            return (redacted, count) if count else (text, 0)
        replaced = 0
        replacement = self._replacement

        def substitute(match: re.Match[str]) -> str:
            nonlocal replaced
            new = replacement(match)
            if new is None:
                return match.group()
            replaced += 1
            return new

        redacted = self._candidates.sub(substitute, text)
        return (redacted, replaced) if replaced else (text, 0)


def placeholder_if(valid: Callable[[str], bool], placeholder: str) -> Replacement:
    """For validators that accept or reject a candidate as a whole."""

    def replacement(match: re.Match[str]) -> str | None:
        return placeholder if valid(match.group()) else None

    return replacement


class RedactorChain(BuiltInRedactor):
    """Several redactors sharing one placeholder, exposed as one (e.g. IPv6 then IPv4).

    Each part that is a :class:`Detector` keeps its own pre-check; the chain's passes if
    any part's does.
    """

    __slots__ = ("_steps", "parts")

    def __init__(self, name: str, *parts: Redactor) -> None:
        fewest = min(part.min_digits if isinstance(part, Detector) else 0 for part in parts)
        super().__init__(name, self._any_part_may_change, min_digits=fewest)
        self.parts = parts
        # Each part's pre-check and redaction; a part that is no detector may change any text.
        self._steps: tuple[tuple[Precheck, Redactor], ...] = tuple(
            (part.precheck, part.detect) if isinstance(part, Detector) else (_anything, part)
            for part in parts
        )

    def _any_part_may_change(self, text: str, digits: int, others: int, shape: bytes) -> bool:
        # A loop, not any(): no generator object for every text the pipeline sees.
        for precheck, _ in self._steps:  # noqa: SIM110
            if precheck(text, digits, others, shape):
                return True
        return False

    def detect(self, text: str) -> tuple[str, int]:
        total = 0
        counts: Counts | None = None  # the current text's, shared by the parts
        for precheck, redact in self._steps:
            if counts is None:
                counts = counts_of(text)
            if precheck(text, *counts):
                redacted, count = redact(text)
                total += count
                if redacted != text:
                    text, counts = redacted, None
        return text, total


def _anything(text: str, digits: int, others: int, shape: bytes) -> bool:
    return True
