"""A sound shortcut past libphonenumber: digits that cannot hold a valid number of a region.

libphonenumber spends about 30 µs on each candidate it parses, so numeric data (CSV rows, ids)
would cost seconds per megabyte. A number written without ``+`` or an international prefix
belongs to the default region's country code, and its national significant number is what is
left of its digits after a country code or national prefix is cut from the front and an
extension from the back: it ends where a digit group ends, has one of the possible lengths of
a region with that country code, and matches the pattern of one of that region's number types
(fixed line, mobile, toll free, ...). Checking this on
the plain digits costs about a microsecond. It cannot rule anything out when the number may
come from elsewhere: a ``+`` or international prefix (another country's numbers), letters
(vanity numbers, extension marks), non-ASCII digits, or a national prefix rule that rewrites
digits.
"""

from __future__ import annotations

import re
from itertools import accumulate

import phonenumbers

from closedloop.privacy._redaction._phone_metadata import (
    main_region_metadata,
    region_metadata,
    required,
)

_UNSURE = re.compile(r"[+A-Za-z]")
# A valid number matches the pattern of one of these types (libphonenumber's PhoneNumberType).
_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)
_DIGIT_GROUP = re.compile(r"\d+", re.ASCII)


class NationalNumbers:
    """What a valid number written in ``region``'s national format can look like."""

    __slots__ = ("_international_prefix", "_lengths", "_pattern", "_rewrites")

    def __init__(self, region: str) -> None:
        metadata = region_metadata(region)
        country_code = required(metadata.country_code, "country code")
        regions = phonenumbers.region_codes_for_country_code(country_code)
        every = [region_metadata(code) for code in regions]
        descriptions = [getattr(other, kind) for other in every for kind in _NUMBER_TYPES]
        patterns = "|".join(
            f"(?:{desc.national_number_pattern})"
            for desc in descriptions
            if desc is not None and desc.national_number_pattern
        )
        lengths = {
            length
            for other in every
            for length in required(other.general_desc, "general description").possible_length
        }
        # Stripping the national prefix uses the region's rules, or the main region's for the
        # country code once that was stripped too.
        main = main_region_metadata(country_code)
        self._rewrites = any(md.national_prefix_transform_rule for md in (metadata, main))
        self._pattern = re.compile(patterns)
        self._lengths = sorted(length for length in lengths if length > 0)
        prefix = metadata.international_prefix
        self._international_prefix = re.compile(prefix) if prefix else None

    def may_hold_valid(self, text: str, *, whole: bool) -> bool:
        """False only if no number libphonenumber can read in ``text`` is valid in the region.

        With ``whole``, only a number that is all of ``text`` counts; otherwise any number
        made of consecutive digit groups of it (libphonenumber splits a candidate that does
        not parse at slashes, brackets, dots, spaces and dashes, and tries the parts).
        """
        if self._rewrites or not text.isascii():
            return True
        if text.isdigit():
            return self._is_foreign(text, 0) or self._ends_national_number(text, len(text))
        if _UNSURE.search(text):
            return True
        groups = _DIGIT_GROUP.findall(text)
        digits = "".join(groups)
        if whole:
            return self._is_foreign(digits, 0) or self._ends_national_number(digits, len(digits))
        ends = list(accumulate(map(len, groups)))
        return any(self._is_foreign(digits, start) for start in [0, *ends[:-1]]) or any(
            self._ends_national_number(digits, end) for end in ends
        )

    def _is_foreign(self, digits: str, start: int) -> bool:
        """Whether a number starting at ``start`` has the international prefix: then it is
        another country's, and nothing here applies."""
        prefix = self._international_prefix
        return prefix is not None and prefix.match(digits, start) is not None

    def _ends_national_number(self, digits: str, end: int) -> bool:
        """Whether ``digits[:end]`` ends with what may be a valid national number."""
        for length in self._lengths:
            if length > end:
                return False
            if self._pattern.fullmatch(digits, end - length, end):
                return True
        return False
