"""Possible numbers in a window: libphonenumber's matcher, minus its work where the answer is
known.

The matcher at leniency POSSIBLE costs about 20 µs a window; 13 of them are the parse. For
the window shape that dominates real text, an international number alone between non-digits
(" +1 415 555 2671) p"), the matcher's steps are fixed, so they are taken here directly:

- its candidate pattern (a lead or digit first, digit blocks of at most 20 digits joined by
  punctuation, an extension only with digits) finds exactly the number: nothing before the
  "+" can start a candidate, and nothing after it can continue one, as it holds no digit
  but those after another "+", which no candidate runs across;
- its pre-checks pass: no "/" (dates, a second number), no brackets (bracket matching,
  publication pages), no digit right after the number (a time stamp's ":MM");
- then it parses the number (``keep_raw_input``) and keeps it if possible, clearing the raw
  input fields; after it, at most a "+" and two digits are left ("+1 415 555 2671\n+1" in a
  list of numbers), too short for any number to parse.

Only if that parse fails or the number is not possible does the matcher look inside the
candidate, so only then is it run. ASCII windows only: libphonenumber reads Unicode digits.

The parse itself is mostly Unicode normalisation and RFC 3966 and extension handling, none of
which can change a "+" and ASCII digit groups; ``parse_plus_number`` takes only the steps that
can. Whether that number is possible depends only on its country code and the length of what
follows, unless a national prefix is stripped: ``surely_possible`` answers from a table of
lengths per country code, without building the number at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

import phonenumbers
from phonenumbers import (
    CountryCodeSource,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberMatch,
)
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    ValidationResult,
    region_code_for_country_code,
)

try:  # libphonenumber's internal steps: a release without them leaves its public parse
    from phonenumbers.phonenumberutil import (
        _extract_country_code,
        _maybe_strip_national_prefix_carrier_code,
        _set_italian_leading_zeros_for_phone_number,
        _test_number_length,
    )

    HAS_PARSE_STEPS = True
except ImportError:  # pragma: no cover - the installed release has them
    HAS_PARSE_STEPS = False

from closedloop.privacy._redaction.base import ascii_digit_count

_POSSIBLE = phonenumbers.Leniency.POSSIBLE
# Failed parses libphonenumber may try per window (the whole candidate, then the parts it
# splits it into); ordinary text needs a few, the bound caps what a crafted window costs.
MAX_TRIES = 16
# A "+" and digit groups joined by one space, dash or dot.
PLUS_NUMBER = r"\+[0-9]+(?:[ .-][0-9]+)*"
# What may follow it to its window's end: ASCII characters but digits and "+", then maybe a
# "+" with at most two digits (the start of the next number in a list).
PLUS_NUMBER_AFTER = r"[\x00-*,-/:-\x7f]*(?:\+[0-9]{0,2})?"
# A window holding one: a character that cannot start a candidate (no digit, bracket or
# plus) or none, the number, then what may follow it.
_PLUS_NUMBER = re.compile(f"[^0-9(\\[+]?({PLUS_NUMBER}){PLUS_NUMBER_AFTER}", re.ASCII)
_MAX_BLOCK_DIGITS = 20  # the matcher's longest digit block, and fewer blocks than it allows
_MIN_NSN, _MAX_NSN = 2, 17  # libphonenumber's bounds on a national significant number
# Lengths for which parse keeps the national prefix: the rest may be a short number.
_KEEP_PREFIX = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


def lone_plus_number(window: str) -> re.Match[str] | None:
    """The shape of a window that holds a "+" number alone (its group 1), or None."""
    return _PLUS_NUMBER.fullmatch(window) if window.isascii() else None


def possible_numbers(window: str, region: str) -> Iterable[PhoneNumberMatch]:
    """What ``PhoneNumberMatcher(window, region, POSSIBLE, MAX_TRIES)`` yields."""
    shape = lone_plus_number(window)
    if shape is not None:
        candidate = shape.group(1)
        if ascii_digit_count(candidate.encode("ascii")) <= _MAX_BLOCK_DIGITS:
            number = _possible(candidate, region)
            if number is not None:
                return (PhoneNumberMatch(shape.start(1), candidate, number),)
    return phonenumbers.PhoneNumberMatcher(window, region, leniency=_POSSIBLE, max_tries=MAX_TRIES)


def _possible(candidate: str, region: str) -> PhoneNumber | None:
    """The number ``candidate`` parses to if it is possible, as the matcher returns it."""
    number = parse_plus_number(candidate, region) if HAS_PARSE_STEPS else _parse(candidate, region)
    if number is None or not phonenumbers.is_possible_number(number):
        return None
    number.country_code_source = CountryCodeSource.UNSPECIFIED
    number.raw_input = None
    number.preferred_domestic_carrier_code = None
    return number


def surely_possible(digits: str) -> bool:
    """True only if ``possible_numbers`` finds the candidate of a ``lone_plus_number`` with
    these ``digits`` (its ``plus_number_digits``) and ``is_possible_number_with_reason`` calls
    its number IS_POSSIBLE; False if it may not.

    False covers every case the table cannot settle: more than ``_MAX_BLOCK_DIGITS`` digits,
    no country code, or a national prefix that parse may strip.
    """
    if len(digits) > _MAX_BLOCK_DIGITS or not HAS_PARSE_STEPS:
        return False
    # As parse extracts it: the shortest of the first three digits' prefixes that is a
    # country code (none starts with "0").
    for size in (1, 2, 3):
        if digits[:size] in _COUNTRY_CODES:
            break
    else:
        return False
    lengths = _country_lengths(digits[:size])
    if lengths is None:
        return False
    national = digits[size:]
    prefix = lengths.national_prefix
    if prefix is not None and prefix.match(national):
        return False
    return len(national) in lengths.possible


_COUNTRY_CODES = frozenset(map(str, COUNTRY_CODE_TO_REGION_CODE))


class _CountryLengths(NamedTuple):
    """What decides, for one country code, whether a "+" number is possible."""

    national_prefix: re.Pattern[str] | None  # what parse may strip from the national number
    possible: frozenset[int]  # national lengths that are IS_POSSIBLE, within parse's bounds


@functools.cache  # one entry per country code: a few hundred at most
def _country_lengths(code: str) -> _CountryLengths | None:
    country_code = int(code)
    metadata = _metadata(country_code, region_code_for_country_code(country_code))
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    # Only the length of the national significant number counts, not its digits.
    possible = frozenset(
        length
        for length in range(_MIN_NSN, _MAX_NSN + 1)
        if _test_number_length("0" * length, metadata) == ValidationResult.IS_POSSIBLE
    )
    return _CountryLengths(re.compile(prefix) if prefix else None, possible)


def plus_number_digits(candidate: str) -> str:
    """The digits of a ``lone_plus_number``'s candidate."""
    return candidate[1:].replace(" ", "").replace(".", "").replace("-", "")


def parse_plus_number(candidate: str, region: str) -> PhoneNumber | None:
    """``phonenumbers.parse(candidate, region, keep_raw_input=True)``, None where it raises,
    for a ``_PLUS_NUMBER`` candidate of at most ``_MAX_BLOCK_DIGITS`` digits.

    For this shape parse's first steps are fixed: the candidate is shorter than its input
    limit, holds no ";phone-context=" or ";isub=", starts with "+" (so any region will do)
    and ends with a digit, so it is the number to parse; it is viable exactly when it has
    three digits, which the check after the "+" needs anyway; it has no extension, as every
    extension form needs a letter, "#", "~", "," or ";"; normalising it keeps its digits. The
    rest are libphonenumber's own steps after its "+" is stripped.
    """
    digits = plus_number_digits(candidate)
    if len(digits) <= _MIN_NSN:
        return None  # too short after the "+"
    country_code, national = _extract_country_code(digits)
    if country_code == 0:
        return _parse(candidate, region)  # rare: parse retries it without the "+", as an IDD
    if len(national) < _MIN_NSN:
        return None
    number = PhoneNumber(
        country_code=country_code,
        raw_input=candidate,
        country_code_source=CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
    )
    metadata = _metadata(country_code, region)
    if metadata is not None:
        carrier, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
        if _test_number_length(stripped, metadata) not in _KEEP_PREFIX:
            national = stripped
            number.preferred_domestic_carrier_code = carrier or None
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def _metadata(country_code: int, region: str) -> PhoneMetadata | None:
    """The metadata parse reads for a number with ``country_code`` parsed in ``region``."""
    number_region = region_code_for_country_code(country_code)
    if number_region == region:
        return PhoneMetadata.metadata_for_region(region.upper(), None)
    return PhoneMetadata.metadata_for_region_or_calling_code(country_code, number_region)


def _parse(candidate: str, region: str) -> PhoneNumber | None:
    """``phonenumbers.parse`` keeping the raw input, None where it raises."""
    try:
        return phonenumbers.parse(candidate, region, keep_raw_input=True)
    except NumberParseException:
        return None
