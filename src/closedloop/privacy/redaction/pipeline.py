"""The built-in redactors in a safe order, and the pipeline that runs redactors to a fixpoint."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop.privacy.redaction.base import RedactionResult, Redactor
from closedloop.privacy.redaction.cards import redact_cards
from closedloop.privacy.redaction.emails import redact_emails
from closedloop.privacy.redaction.ibans import redact_ibans
from closedloop.privacy.redaction.ips import redact_ips
from closedloop.privacy.redaction.phones import PhoneRedactor
from closedloop.privacy.redaction.secrets import redact_secrets
from closedloop.privacy.redaction.ssns import redact_ssns


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


class RedactionPipeline:
    """Runs redactors in order and totals their replacements.

    ``redactors=None`` selects :func:`default_redactors` (``phone_region`` applies only then);
    ``extra`` redactors run after them, so they see text with built-in PII already replaced.
    """

    __slots__ = ("_redactors",)

    def __init__(
        self,
        redactors: Sequence[Redactor] | None = None,
        *,
        extra: Sequence[Redactor] = (),
        phone_region: str = "US",
    ) -> None:
        chosen = default_redactors(phone_region) if redactors is None else redactors
        self._redactors: tuple[Redactor, ...] = (*chosen, *extra)
        for redactor in self._redactors:
            if not callable(redactor):
                raise TypeError(f"redactor {redactor!r} is not callable as redactor(text)")

    @property
    def redactors(self) -> tuple[Redactor, ...]:
        return self._redactors

    def redact(self, text: str) -> RedactionResult:
        if not text:
            return _EMPTY
        total = 0
        for _ in range(_MAX_PASSES):
            before = text
            for redactor in self._redactors:
                text, count = redactor(text)
                total += count
            # A replacement can expose a new match to an earlier redactor ("1.2.3.4.5 123-..."
            # becomes "1.2.3.4.<PHONE>", now an IP), so repeat until nothing changes: then
            # redacting the result again is a no-op. Text without PII takes one pass.
            if text == before:
                break
        return RedactionResult(text, total)

    def __repr__(self) -> str:
        return f"RedactionPipeline({list(self._redactors)!r})"
