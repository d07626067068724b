"""The phone search's own parts: the syntax it copies from libphonenumber, and its shortcuts.

The windows are cut with libphonenumber's punctuation, leading characters and extension
syntax, copied into a regex; these tests fail if a phonenumbers upgrade changes them. The
shortcuts past libphonenumber must never drop a valid number, nor a formatted possible one.
"""

from __future__ import annotations

import re
from collections import Counter

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import (
    Leniency,
    PhoneNumberFormat,
    PhoneNumberMatcher,
    PhoneNumberType,
    phonenumbermatcher,
    phonenumberutil,
)

from closedloop.privacy._redaction import _formatted_numbers, _phone_windows
from closedloop.privacy._redaction._formatted_numbers import FormattedNumbers
from closedloop.privacy._redaction._national_numbers import NationalNumbers


def test_copied_libphonenumber_syntax_matches_the_library() -> None:
    def chars(char_class: str) -> set[str]:
        pattern = re.compile(f"[{char_class}]", re.IGNORECASE)
        return {chr(code) for code in range(0x10000) if pattern.fullmatch(chr(code))}

    assert chars(_phone_windows.PUNCTUATION) == chars(phonenumberutil._VALID_PUNCTUATION)
    assert chars(_phone_windows.LEADS) == chars(phonenumbermatcher._LEAD_CLASS_CHARS)


EXTENSION_PIECES = (
    *(" ", "\xa0", "\t", ",", "-", ";ext=", "ext", "extensi\xf3n", "xtn", "x", "X", "#", "~"),
    *("int", "\uff45\uff58\uff54", "\u0434\u043e\u0431", "anexo", ":", "."),
    *("1", "23", "4567", "12345678901"),
)


@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(EXTENSION_PIECES), max_size=7).map("".join))
def test_copied_extension_syntax_matches_the_library(text: str) -> None:
    # Ours allows at most eight separators in a row where the library allows any number;
    # seven pieces never reach that.
    library = re.compile(phonenumberutil._EXTN_PATTERNS_FOR_MATCHING, re.IGNORECASE)
    ours = re.compile(_phone_windows.EXTENSION, re.IGNORECASE)
    theirs, mine = library.match(text), ours.match(text)
    assert (theirs and theirs.end()) == (mine and mine.end())


@settings(max_examples=1000, deadline=None)
@given(
    text=st.lists(
        st.sampled_from([*EXTENSION_PIECES, "+", "(", ")", "\uff0b", "\uff38", "XT", "EXT", "2"]),
        max_size=12,
    ).map("".join)
)
def test_the_run_patterns_find_what_they_would_ignoring_case(text: str) -> None:
    # They ignore case only where it matters, which lets ``re`` skip to a run faster.
    for pattern in (_phone_windows._RUN, _phone_windows._ASCII_RUN, _phone_windows._CONTINUATION):
        caseless = re.compile(pattern.pattern, pattern.flags | re.IGNORECASE)
        assert [(run.span(), run.span("extension")) for run in pattern.finditer(text)] == [
            (run.span(), run.span("extension")) for run in caseless.finditer(text)
        ]


NATIONAL_EXAMPLES = [
    (region, number)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in vars(PhoneNumberType).values()
    if isinstance(kind, int)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]


def test_the_shortcut_past_libphonenumber_keeps_every_valid_number() -> None:
    """Every valid example number of every region, as written there, passes the check."""
    national = {region: NationalNumbers(region) for region in phonenumbers.SUPPORTED_REGIONS}
    for region, number in NATIONAL_EXAMPLES:
        digits = phonenumbers.national_significant_number(number)
        written = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        with_country_code = f"{number.country_code} {digits}"  # read as national in parse
        for text in {written, digits, re.sub(r"\D", "", written), with_country_code}:
            parsed = phonenumbers.parse(text, region)
            if phonenumbers.is_valid_number(parsed):
                assert national[region].may_hold_valid(text, whole=True), (region, text)
                assert national[region].may_hold_valid(f"{text} 12", whole=False), (region, text)


def test_the_shortcut_rejects_what_cannot_be_a_number() -> None:
    us = NationalNumbers("US")
    assert not us.may_hold_valid("1234567", whole=True)
    assert not us.may_hold_valid("0.7053 0.0866 0.8785", whole=True)
    assert us.may_hold_valid("201-555-0123", whole=True)
    assert us.may_hold_valid("011 44 20 7946 0958", whole=True)  # international prefix


def formatted_writings(number: phonenumbers.PhoneNumber) -> set[str]:
    """A number as people write it: national format, area code in brackets, with "+"."""
    nsn = phonenumbers.national_significant_number(number)
    area_code = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966).split("-")[1]
    return {
        phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        f"({area_code}) {nsn[len(area_code) :]}",
    }


def test_the_formatted_pre_check_keeps_every_formatted_number() -> None:
    """Whatever the formatted test accepts in a text, the cheap pre-check lets through."""
    formatted = {region: FormattedNumbers(region) for region in phonenumbers.SUPPORTED_REGIONS}
    accepted = Counter()
    for region, number in NATIONAL_EXAMPLES:
        for written in formatted_writings(number):
            text = f"call {written} now"
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
                if formatted[region].accepts(text, match):
                    accepted[region] += 1
                    assert formatted[region].may_hold(written), (region, written)
    assert accepted["US"] >= 10
    assert len(accepted) >= 200  # regions with a number accepted: the test is not vacuous


def test_the_formatted_test_rejects_bare_and_misgrouped_numbers() -> None:
    us = FormattedNumbers("US")
    for text in ("7612176614", "7612-176614", "761 21 766 14", "217-6614", "abc761-217-6614"):
        matches = phonenumbers.PhoneNumberMatcher(text, "US", leniency=Leniency.POSSIBLE)
        assert not any(us.accepts(text, match) for match in matches), text


def test_copied_word_check_matches_the_library() -> None:
    # Leniency POSSIBLE skips libphonenumber's check for letters around a number; the
    # formatted test makes it with a copy.
    for code in range(0x10000):
        char = chr(code)
        assert _formatted_numbers._is_latin_letter(char) == PhoneNumberMatcher._is_latin_letter(
            char
        ), hex(code)
        assert _formatted_numbers._is_invalid_punctuation(
            char
        ) == PhoneNumberMatcher._is_invalid_punctuation_symbol(char), hex(code)


def test_digits_are_counted_in_any_script() -> None:
    assert _phone_windows.digit_count("\uff08201\uff09555-0123") == 10
    assert _phone_windows.digit_count("\uff12\uff10\uff11\u2013555\u20130123") == 10
