"""The built-in redactors in a safe order, and the pipeline that runs redactors to a fixpoint."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop._text_memory import TextMemory
from closedloop.privacy._redaction._detector import (
    NO_COUNTS,
    Counts,
    Detector,
    Precheck,
    counts_of,
)
from closedloop.privacy._redaction.base import RedactionResult, Redactor, reaches_fixpoint
from closedloop.privacy._redaction.cards import redact_cards
from closedloop.privacy._redaction.emails import redact_emails
from closedloop.privacy._redaction.ibans import redact_ibans
from closedloop.privacy._redaction.ips import redact_ips
from closedloop.privacy._redaction.phones import PhoneRedactor
from closedloop.privacy._redaction.regex import RegexRedactor
from closedloop.privacy._redaction.secrets import redact_secrets
from closedloop.privacy._redaction.ssns import redact_ssns


def default_redactors(phone_region: str = "US") -> list[Redactor]:
    """The built-in redactors in the order that keeps them from stealing each other's matches.

    Secrets first (a token's digit runs would otherwise be replaced piecemeal, leaving the rest
    of it), IBANs before cards (an IBAN's digits can pass Luhn), and phones last: libphonenumber
    would read card, IBAN, IP and SSN digits as phone numbers.
    """
    return [
        redact_secrets,
        redact_emails,
        redact_ibans,
        redact_cards,
        redact_ssns,
        redact_ips,
        PhoneRedactor(phone_region),
    ]


_EMPTY = RedactionResult("", 0)
_MAX_PASSES = 3  # a bound in case a custom redactor keeps rewriting its own output
# What the pipeline runs for a redactor: a detector's pre-check (None for other redactors),
# whether that reads the text's counts, the redaction it guards, and whether running it on
# its own output changes nothing.
_Step = tuple[Precheck | None, bool, Redactor, bool]


def _step(redactor: Redactor) -> _Step:
    if isinstance(redactor, Detector):
        return redactor.precheck, redactor.reads_counts, redactor.detect, reaches_fixpoint(redactor)
    return None, False, redactor, reaches_fixpoint(redactor)


class RedactionPipeline:
    """Runs redactors in order and totals their replacements.

    ``redactors=None`` selects :func:`default_redactors` (``phone_region`` applies only then);
    ``extra`` redactors run after them, so they see text with built-in PII already replaced.
    ``remember`` keeps the results of recent texts up to 32 KB (a few MB at most) when every
    redactor is built in or a :class:`RegexRedactor`: a system prompt sent on every call is
    redacted once. Other redactors may depend on more than the text, so they run every time.
    """

    __slots__ = ("_few_digit_scan", "_fewest", "_memory", "_redactors", "_scan", "_steps")

    def __init__(
        self,
        redactors: Sequence[Redactor] | None = None,
        *,
        extra: Sequence[Redactor] = (),
        phone_region: str = "US",
        remember: bool = True,
    ) -> None:
        chosen = default_redactors(phone_region) if redactors is None else redactors
        self._redactors: tuple[Redactor, ...] = (*chosen, *extra)
        for redactor in self._redactors:
            if not callable(redactor):
                raise TypeError(f"redactor {redactor!r} is not callable as redactor(text)")
        self._steps = tuple(map(_step, self._redactors))
        # The first pass asks the pre-checks in order: all of them (with their index), or
        # for text with fewer digits than any detector that needs digits, only the others.
        needs = [r.min_digits if isinstance(r, Detector) else 0 for r in self._redactors]
        self._scan = tuple((index, step[0]) for index, step in enumerate(self._steps))
        self._fewest = min((need for need in needs if need), default=0)
        self._few_digit_scan = tuple(
            item for item, need in zip(self._scan, needs, strict=True) if not need
        )
        # Results per text, kept only for a function of the text alone: built-in redactors.
        self._memory: TextMemory[RedactionResult] | None = None
        if remember and all(isinstance(r, (Detector, RegexRedactor)) for r in self._redactors):
            self._memory = TextMemory(self._redact_untagged)

    @property
    def redactors(self) -> tuple[Redactor, ...]:
        return self._redactors

    @property
    def remembers(self) -> bool:
        """True when a text's result depends on the text alone, and is remembered."""
        return self._memory is not None

    def redact(self, text: str) -> RedactionResult:
        """Redact ``text``: remembered for a text seen recently, else :meth:`_redact`."""
        if self._memory is None or type(text) is not str:
            return self._redact(text)
        return self._memory(text)

    def _redact_untagged(self, text: str, tag: str) -> RedactionResult:
        return self._redact(text)

    def redact_anew(self, text: str) -> RedactionResult:
        """Redact ``text`` without the memory of recent texts: for callers that remember
        what they make of the result themselves."""
        return self._redact(text)

    def _redact(self, text: str) -> RedactionResult:
        """Redact until no redactor changes the text, so redacting the result is a no-op.

        A replacement can expose a new match to an earlier redactor ("1.2.3.4.5 123-..."
        becomes "1.2.3.4.<PHONE>", now an IP), so after a change the redactors that have not
        seen the new text run again, and only they: text without PII takes one pass, and
        the phone redactor (the costly one, which settles its own output) runs again only if
        another redactor changed the text after it. The built-in detectors' pre-checks share
        one count of the text's digits per version of it, so text without PII is rejected by
        each detector in a substring test or two. After a change, the text is counted again
        only once a pre-check reads its counts.
        """
        if not text:
            return _EMPTY
        # Counted first: the counts choose the pre-checks to ask, and most of those read them.
        counts = counts_of(text)
        digits, others, shape = counts
        scan = self._scan if digits + others >= self._fewest else self._few_digit_scan
        for start, precheck in scan:
            if precheck is None or precheck(text, digits, others, shape):
                return self._to_fixpoint(text, start, counts)
        return RedactionResult(text, 0)  # most text: no pre-check passes, nothing to redact

    def _to_fixpoint(self, text: str, start: int, counts: Counts | None) -> RedactionResult:
        """The passes of :meth:`_redact` over text whose redactors before ``start`` have
        rejected it (``counts``: its counts, if taken)."""
        total = 0
        version = 0  # counts changes to the text
        # The version each redactor's output is final for (-1: not yet).
        seen = [0] * start + [-1] * (len(self._steps) - start)
        for _ in range(_MAX_PASSES):
            first = version
            for index, (precheck, reads_counts, redact, settles) in enumerate(self._steps):
                if seen[index] == version:
                    continue
                if precheck is not None:
                    if reads_counts and counts is None:
                        counts = counts_of(text)
                    if not precheck(text, *(NO_COUNTS if counts is None else counts)):
                        seen[index] = version
                        continue
                redacted, count = redact(text)
                total += count
                if redacted == text:
                    seen[index] = version
                    continue
                text = redacted
                counts = None
                version += 1
                seen[index] = version if settles else version - 1
            if version == first:  # every redactor has seen this text and left it as it is
                break
        return RedactionResult(text, total)

    def __repr__(self) -> str:
        return f"RedactionPipeline({list(self._redactors)!r})"
