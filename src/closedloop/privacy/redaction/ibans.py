"""International bank account numbers, confirmed by their ISO 7064 mod-97 check digits."""

from __future__ import annotations

import re
import string

from closedloop.privacy.redaction._candidates import CandidateRedactor
from closedloop.privacy.redaction.base import Span, digit_count

# ISO 13616 registry countries plus those with widely used national IBAN formats.
_IBAN_COUNTRY_CODES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO "
    "DZ EE EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM "
    "KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL "
    "PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
_IBAN_COUNTRIES = frozenset(_IBAN_COUNTRY_CODES.split())
_LETTER_VALUES = {
    ord(letter): str(value) for value, letter in enumerate(string.ascii_uppercase, 10)
}
_IBAN = re.compile(
    r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    re.ASCII,
)


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or compact[:2] not in _IBAN_COUNTRIES:
        return False
    if not 2 <= int(compact[2:4]) <= 98:
        return False
    return int((compact[4:] + compact[:4]).translate(_LETTER_VALUES)) % 97 == 1


def _iban_spans(match: re.Match[str]) -> tuple[Span, ...]:
    # The candidate may have swallowed a following 4-character word ("... 7034 THEN"):
    # retry without trailing space-separated groups before giving up.
    candidate = match.group()
    while True:
        if _iban_valid(candidate.replace(" ", "")):
            return ((match.start(), match.start() + len(candidate)),)
        head, space, _ = candidate.rpartition(" ")
        if not space:
            return ()
        candidate = head


# Check digits plus a (mostly) numeric account number: real IBANs carry at least 12 digits.
redact_ibans = CandidateRedactor(
    "ibans", _IBAN, "<IBAN>", _iban_spans, precheck=lambda text: digit_count(text) >= 10
)
