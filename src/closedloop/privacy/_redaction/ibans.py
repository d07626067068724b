"""International bank account numbers, confirmed by their ISO 7064 mod-97 check digits."""

from __future__ import annotations

import re
import string

from closedloop.privacy._redaction._candidates import CandidateRedactor
from closedloop.privacy._redaction.base import TextRange, digit_count

# ISO 13616 registry countries plus those with widely used national IBAN formats.
_IBAN_COUNTRY_CODES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO "
    "DZ EE EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM "
    "KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL "
    "PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
_IBAN_COUNTRIES = frozenset(_IBAN_COUNTRY_CODES.split())
_MIN_LENGTH, _MAX_LENGTH = 15, 34
_LETTER_VALUES = {
    ord(letter): str(value) for value, letter in enumerate(string.ascii_uppercase, 10)
}
_IBAN = re.compile(
    r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    re.ASCII,
)


def _iban_spans(match: re.Match[str]) -> tuple[TextRange, ...]:
    # The candidate may have swallowed following 4-character words ("... 7034 THEN"): retry
    # without trailing space-separated groups, down to the shortest IBAN, before giving up.
    candidate = match.group()  # starts with the country code and check digits, unspaced
    if candidate[:2] not in _IBAN_COUNTRIES or not 2 <= int(candidate[2:4]) <= 98:
        return ()
    moved_to_end = candidate[:4].translate(_LETTER_VALUES)
    while True:
        compact = candidate.replace(" ", "")
        if len(compact) < _MIN_LENGTH:
            return ()
        account = compact[4:].translate(_LETTER_VALUES)
        if len(compact) <= _MAX_LENGTH and int(account + moved_to_end) % 97 == 1:
            return ((match.start(), match.start() + len(candidate)),)
        candidate, space, _ = candidate.rpartition(" ")
        if not space:
            return ()


# Check digits plus a (mostly) numeric account number: real IBANs carry at least 12 digits.
redact_ibans = CandidateRedactor(
    "ibans", _IBAN, "<IBAN>", _iban_spans, precheck=lambda text: digit_count(text) >= 10
)
