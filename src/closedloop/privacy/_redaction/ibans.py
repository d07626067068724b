"""International bank account numbers, confirmed by their ISO 7064 mod-97 check digits."""

from __future__ import annotations

import re
import string

from closedloop.privacy._redaction._candidates import CandidateRedactor
from closedloop.privacy._redaction._zones import SEPARATED_SHAPE, Zones
from closedloop.privacy._redaction.base import TextRange, ascii_digit_count

# ISO 13616 registry countries plus those with widely used national IBAN formats.
_IBAN_COUNTRY_CODES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO "
    "DZ EE EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM "
    "KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL "
    "PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
_MIN_LENGTH, _MAX_LENGTH = 15, 34
_MIN_DIGITS = 10
_LETTER_VALUES = {
    ord(letter): str(value) for value, letter in enumerate(string.ascii_uppercase, 10)
}
# Each country code as the digits it moves to the end for the check ("GB" is "1611").
_COUNTRY_DIGITS = {code: code.translate(_LETTER_VALUES) for code in _IBAN_COUNTRY_CODES.split()}
_IBAN = re.compile(
    r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    re.ASCII,
)


def _iban_spans(match: re.Match[str]) -> tuple[TextRange, ...]:
    # The candidate may have swallowed following 4-character words ("... 7034 THEN"): retry
    # without trailing space-separated groups, down to the shortest IBAN, before giving up.
    candidate = match.group()  # starts with the country code and check digits, unspaced
    country = _COUNTRY_DIGITS.get(candidate[:2])
    if country is None or not 2 <= int(candidate[2:4]) <= 98:
        return ()
    moved_to_end = country + candidate[2:4]
    while True:
        compact = candidate.replace(" ", "")
        if len(compact) < _MIN_LENGTH:
            return ()
        account = compact[4:]
        # Letters spell two digits each. Translating them is slow, so only the part up to
        # the last letter is translated: most IBANs have none, or a bank code of letters.
        letters = account.rstrip(string.digits)
        if letters:
            account = letters.translate(_LETTER_VALUES) + account[len(letters) :]
        if len(compact) <= _MAX_LENGTH and int(account + moved_to_end) % 97 == 1:
            return ((match.start(), match.start() + len(candidate)),)
        candidate, space, _ = candidate.rpartition(" ")
        if not space:
            return ()


class IbanRedactor(CandidateRedactor):
    """Check digits plus a (mostly) numeric account number: real IBANs carry at least 12
    digits, so text with fewer than 10 holds none. That is a rule, not only a shortcut:
    letters pass the mod-97 check as often as digits do ("GB59 WEST ABCD EFGH IJ1")."""

    __slots__ = ()

    def detect(self, text: str) -> tuple[str, int]:
        # Counted only once an IBAN is found: the pipeline's pre-check has ruled out most text.
        redacted, count = super().detect(text)
        if count and ascii_digit_count(text.encode("ascii", "ignore")) < _MIN_DIGITS:
            return text, 0
        return redacted, count


def _may_hold_iban(text: str, digits: int, others: int, shape: bytes) -> bool:
    # An IBAN starts with its country code and check digits: "AA00" in a text's shape.
    return digits >= _MIN_DIGITS and b"AA00" in shape


redact_ibans = IbanRedactor(
    "ibans",
    _IBAN,
    "<IBAN>",
    _iban_spans,
    precheck=_may_hold_iban,
    min_digits=_MIN_DIGITS,
    # An IBAN is capitals, digits and spaces: "AA00" (its country code and check digits, with
    # no space between them), then "A"s, "0"s and "-"s in a shape where spaces are "-"s.
    zones=Zones(b"AA00", b"[A0-]*", shape=SEPARATED_SHAPE),
)
