"""Possible numbers in a window: libphonenumber's matcher, minus its work where the answer is
known.

The matcher at leniency POSSIBLE costs about 20 µs a window; 13 of them are the parse. For
the window shape that dominates real text, an international number alone between non-digits
(" +1 415 555 2671) p"), the matcher's steps are fixed, so they are taken here directly:

- its candidate pattern (a lead or digit first, digit blocks of at most 20 digits joined by
  punctuation, an extension only with digits) finds exactly the number: nothing before the
  "+" can start a candidate, and nothing after it, which holds no digit, can continue one;
- its pre-checks pass: no "/" (dates, a second number), no brackets (bracket matching,
  publication pages), no digit after the number (a time stamp's ":MM");
- then it parses the number (``keep_raw_input``) and keeps it if possible, clearing the raw
  input fields; after it, no digit is left to start another candidate.

Only if that parse fails or the number is not possible does the matcher look inside the
candidate, so only then is it run. ASCII windows only: libphonenumber reads Unicode digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import CountryCodeSource, NumberParseException, PhoneNumberMatch

from closedloop.privacy._redaction.base import ascii_digit_count

_POSSIBLE = phonenumbers.Leniency.POSSIBLE
# Failed parses libphonenumber may try per window (the whole candidate, then the parts it
# splits it into); ordinary text needs a few, the bound caps what a crafted window costs.
MAX_TRIES = 16
# A character that cannot start a candidate (no digit, bracket or plus), a "+" and digit
# groups joined by one space, dash or dot, then no digit.
_PLUS_NUMBER = re.compile(r"[^0-9(\[+]?(\+[0-9]+(?:[ .-][0-9]+)*)[^0-9]*", re.ASCII)
_MAX_BLOCK_DIGITS = 20  # the matcher's longest digit block, and fewer blocks than it allows


def possible_numbers(window: str, region: str) -> Iterable[PhoneNumberMatch]:
    """What ``PhoneNumberMatcher(window, region, POSSIBLE, MAX_TRIES)`` yields."""
    shape = _PLUS_NUMBER.fullmatch(window) if window.isascii() else None
    if shape is not None:
        candidate = shape.group(1)
        if ascii_digit_count(candidate.encode("ascii")) <= _MAX_BLOCK_DIGITS:
            number = _possible(candidate, region)
            if number is not None:
                return (PhoneNumberMatch(shape.start(1), candidate, number),)
    return phonenumbers.PhoneNumberMatcher(window, region, leniency=_POSSIBLE, max_tries=MAX_TRIES)


def _possible(candidate: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The number ``candidate`` parses to if it is possible, as the matcher returns it."""
    try:
        number = phonenumbers.parse(candidate, region, keep_raw_input=True)
    except NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    number.country_code_source = CountryCodeSource.UNSPECIFIED
    number.raw_input = None
    number.preferred_domestic_carrier_code = None
    return number
