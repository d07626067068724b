"""Phone numbers, as libphonenumber reads them."""

from __future__ import annotations

import re

import phonenumbers

from closedloop.privacy.redaction.base import ascii_digit_count, replace_spans

# Seven digits with at most a few separators between neighbours: every valid number in
# international or national format has that, while prose with a few numbers rarely does.
# In non-ASCII text Unicode digits count too: libphonenumber reads full-width and
# Arabic-Indic digits.
_PHONE_HINT = re.compile(r"\d(?:\D{0,4}\d){6}")
_ASCII_PHONE_HINT = re.compile(_PHONE_HINT.pattern, re.ASCII)


def _may_hold_phone(text: str) -> bool:
    ascii_only = text.encode("ascii", "ignore")
    # Any non-ASCII character might be a digit, so count them all before the Unicode regex.
    digits_at_most = ascii_digit_count(ascii_only) + len(text) - len(ascii_only)
    if digits_at_most < 7:
        return False
    hint = _ASCII_PHONE_HINT if len(ascii_only) == len(text) else _PHONE_HINT
    return hint.search(text) is not None


class PhoneRedactor:
    """Replaces numbers that libphonenumber considers valid with ``<PHONE>``.

    Numbers written without a ``+`` country code are read as numbers of ``region``.
    Run it after the card, IBAN, IP and SSN redactors, whose digits it could otherwise read
    as phone numbers.
    """

    __slots__ = ("_region",)

    def __init__(self, region: str = "US") -> None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"phone_region {region!r} is not a region phonenumbers knows; "
                "use an ISO 3166 code such as 'US', 'GB' or 'DE'"
            )
        self._region = region

    @property
    def region(self) -> str:
        return self._region

    def __call__(self, text: str) -> tuple[str, int]:
        if not _may_hold_phone(text):
            return text, 0
        found = phonenumbers.PhoneNumberMatcher(
            text, self._region, leniency=phonenumbers.Leniency.VALID
        )
        return replace_spans(text, ((number.start, number.end) for number in found), "<PHONE>")

    def __repr__(self) -> str:
        return f"PhoneRedactor({self._region!r})"
