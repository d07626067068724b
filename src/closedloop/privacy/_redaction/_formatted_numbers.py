"""Possible numbers written in a phone format: personal data, assigned area code or not.

libphonenumber's *valid* test knows which area codes are assigned today, so "(761) 217-6614"
fails it; but a number written that way is someone's number, or one a user made up to stand
for theirs. So a *possible* number (one of the right length) is redacted when it is formatted:
written with a leading "+", with its area code in parentheses, or in exactly the digit groups
the region's national format uses ("293-780-2892", "293.780.2892", "020 7946 0958"). Bare
digit runs keep the valid test: ids, timestamps and amounts look like that. A number that is
possible only locally, without its area code ("217-6614"), is not enough: number ranges and
coordinates ("250-5000", "-122.4194") have that shape.

The groups a formatted number must show come from libphonenumber's own formats; a pre-check
built from them rejects a window with no such groups, no "+" and no bracketed area code in a
few microseconds at most, before libphonenumber is asked.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import (
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberMatch,
    ValidationResult,
)
from phonenumbers.unicode_util import Block, Category, is_letter

from closedloop.privacy._redaction._phone_metadata import (
    main_region_metadata,
    region_metadata,
    required,
)
from closedloop.privacy._redaction._phone_windows import MIN_DIGITS

_DIGIT_GROUP = re.compile(r"\d+")
_FIRST_GROUP = re.compile(r"(\\\d)")
_FORMAT_TOKEN = re.compile(r"(?:\\\d|\d)+")  # digits a format writes together, e.g. "0\1"
_CAPTURE = re.compile(r"\\d(?:\{(\d+)(?:,(\d+))?\})?")  # a group of a format's pattern
_LEADS = "([\uff08\uff3b+\uff0b"  # libphonenumber's opening brackets and plus signs
_PLUS = re.compile("[([\uff08\uff3b]*[+\uff0b]")
_BRACKETED = re.compile(r"\((\d+)\)")
_PLUS_SIGNS = "+\uff0b"
_BEFORE_PLUS = "\"'<>:=,\uff1a\uff1d\uff0c"  # and spaces, opening brackets, quotes
_ASCII_INVALID_PUNCTUATION = "%$"  # "%" and the one ASCII currency sign
_ID_SEPARATORS = ("-", ".", "/", "\uff0d", "\uff0e", "\uff0f")
# Characters around a "+" number that join it to nothing (a test checks them against the
# full checks): spaces and opening brackets before it, spaces, closing brackets and
# sentence punctuation after it.
APART_BEFORE_PLUS = " \t\n\r([{"
APART_AFTER = " \t\n\r)]},;:!?"
# The Unicode blocks in which libphonenumber treats a letter next to a number as a word.
_LATIN_BLOCKS = (
    Block.BASIC_LATIN,
    Block.LATIN_1_SUPPLEMENT,
    Block.LATIN_EXTENDED_A,
    Block.LATIN_EXTENDED_ADDITIONAL,
    Block.LATIN_EXTENDED_B,
    Block.COMBINING_DIACRITICAL_MARKS,
)


class FormattedNumbers:
    """Which possible numbers count as formatted phone numbers for ``region``."""

    __slots__ = ("_country_code", "_hint")

    def __init__(self, region: str) -> None:
        country_code = required(region_metadata(region).country_code, "country code")
        # libphonenumber formats every number of a country code with its main region's formats.
        main = main_region_metadata(country_code)
        # Only formats of numbers with one of the lengths a possible number has can apply.
        lengths = set(required(main.general_desc, "general description").possible_length)
        national = {
            _groups_written(fmt)
            for fmt in main.number_format
            if _number_lengths(required(fmt.pattern, "format pattern")) & lengths
        }
        shapes = sorted(
            "(?<!\\d)" + "\\D+".join(f"\\d{{{low},{high}}}" for low, high in groups) + "(?!\\d)"
            for groups in national
            if len(groups) > 1
        )
        # The area code is the first group of the international format (intl_number_format
        # if the region has one): the shortest is the least a bracketed group can hold. A
        # region without formats writes no area code.
        formats = list(main.intl_number_format) or list(main.number_format)
        area_codes = [
            _group_lengths(required(fmt.pattern, "format pattern"))[0][0] for fmt in formats
        ]
        if area_codes:
            shapes.append(f"\\(\\d{{{min(area_codes)},}}\\)")
        self._hint = re.compile("|".join(["\\+", *shapes]))
        self._country_code = country_code

    def may_hold(self, text: str) -> bool:
        """False only if no number in ``text`` can be accepted by :meth:`accepts`."""
        if text.isdecimal():  # a bare digit run, the common case in numeric data
            return False
        return self._hint.search(_ascii_digits(text)) is not None

    def accepts(self, text: str, match: PhoneNumberMatch, *, glued: bool = False) -> bool:
        """Whether ``match`` (found in ``text`` at leniency POSSIBLE) is a formatted number.

        The matcher skips its word check at that leniency, so it is made here: no Latin
        letter (or "%", or a currency sign) right before or after the number, as for a
        valid one. A number needs seven digits, like every window the redactor looks at:
        "+43 0000" is possible, but too short to be anyone's.

        Two more checks keep identifiers out. A "+" is no lead after anything but the start,
        a space, an opening bracket or quote, ":", "=", "," or a non-Latin letter (prose
        without spaces): "1.4.2+201905281530" is a version with build metadata (``glued``:
        ``text`` starts right after a digit it leaves out). A separator and a letter or digit
        after the number make it part of one, as in "555-123-4567-A".
        """
        number, raw = match.number, match.raw_string
        possible = phonenumbers.is_possible_number_with_reason(number)
        if possible != ValidationResult.IS_POSSIBLE or joined_to_its_surroundings(
            text, match.start, match.end, raw[0], glued=glued
        ):
            return False
        written = _DIGIT_GROUP.findall(_ascii_digits(raw))
        if number.extension:
            written.pop()
        if sum(map(len, written)) < MIN_DIGITS:
            return False
        if _PLUS.match(raw):
            return True
        if number.country_code != self._country_code:
            return False  # another country's, written after an international prefix
        plain = PhoneNumber()
        plain.merge_from(number)
        plain.extension = None
        expected = _DIGIT_GROUP.findall(
            phonenumbers.format_number(plain, PhoneNumberFormat.NATIONAL)
        )
        if len(expected) > 1 and written[-len(expected) :] == expected:
            return True
        return _has_bracketed_area_code(raw, plain, number.extension or "")


def _groups_written(fmt: phonenumbers.NumberFormat) -> tuple[tuple[int, int], ...]:
    """The fewest and most digits of each group ``fmt`` writes in the national format,
    national prefix included."""
    lengths = _group_lengths(required(fmt.pattern, "format pattern"))
    rule = required(fmt.format, "format")
    if fmt.national_prefix_formatting_rule:
        # As libphonenumber applies it: the rule replaces the first group reference, which
        # its own "\1" stands for ("0\1" makes "\2 15-\3" read "0\2 15-\3").
        rule = _FIRST_GROUP.sub(fmt.national_prefix_formatting_rule, rule, count=1)
    groups = []
    for token in _FORMAT_TOKEN.findall(rule):
        refs = [int(ref) for ref in re.findall(r"\\(\d)", token)]
        literal = len(re.sub(r"\\\d", "", token))
        low = literal + sum(lengths[ref - 1][0] for ref in refs)
        high = literal + sum(lengths[ref - 1][1] for ref in refs)
        groups.append((low, high))
    return tuple(groups)


def _number_lengths(pattern: str) -> set[int]:
    """The lengths of national significant number a format's pattern formats."""
    groups = _group_lengths(pattern)
    return set(range(sum(low for low, _ in groups), sum(high for _, high in groups) + 1))


def _group_lengths(pattern: str) -> list[tuple[int, int]]:
    """The fewest and most digits of each group of a format's pattern, e.g. "(\\d{3})"."""
    return [(int(low or 1), int(high or low or 1)) for low, high in _CAPTURE.findall(pattern)]


def _has_bracketed_area_code(raw: str, number: PhoneNumber, extension: str) -> bool:
    """Whether ``raw`` brackets the area code, e.g. "(761) 2176614" or "(020) 79460958"."""
    bracketed = _BRACKETED.search(_ascii_digits(raw))
    if bracketed is None:
        return False
    rfc3966 = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)
    area_code = rfc3966.split("-")[1]  # "tel:+1-761-217-6614"
    rest = "".join(_DIGIT_GROUP.findall(_ascii_digits(raw)[bracketed.end() :]))
    rest = rest[: len(rest) - len(extension)]
    nsn = phonenumbers.national_significant_number(number)
    return (
        bracketed.group(1).endswith(area_code)
        and len(area_code) < len(nsn)
        and rest == nsn[len(area_code) :]
    )


def joined_to_its_surroundings(text: str, start: int, end: int, lead: str, *, glued: bool) -> bool:
    """Whether the possible number ``text[start:end]``, which starts with ``lead``, is part
    of a word, of something its "+" joins, or of an identifier (see
    :meth:`FormattedNumbers.accepts`)."""
    # The commonest case first: "+" after a space or an opening bracket, and a space, a
    # closing bracket or the end of the text after the number ("" is in any string).
    if (
        lead == "+"
        and start
        and text[start - 1] in APART_BEFORE_PLUS
        and text[end : end + 1] in APART_AFTER
    ):
        return False
    return _joined(text, start, end, lead, glued=glued)


def _joined(text: str, start: int, end: int, lead: str, *, glued: bool) -> bool:
    """:func:`joined_to_its_surroundings`, every check made."""
    return (
        _inside_word(text, start, end, lead)
        or _glued_plus(text, start, lead, glued=glued)
        or _followed_by_identifier(text, end)
    )


def _inside_word(text: str, start: int, end: int, lead: str) -> bool:
    """libphonenumber's check for a valid number, which leniency POSSIBLE skips."""
    if start and lead not in _LEADS:
        previous = text[start - 1]
        if _is_latin_letter(previous) or _is_invalid_punctuation(previous):
            return True
    return end < len(text) and (_is_latin_letter(text[end]) or _is_invalid_punctuation(text[end]))


def _glued_plus(text: str, start: int, lead: str, *, glued: bool) -> bool:
    """Whether the "+" that a number starts with (``lead``) comes right after a character
    that makes it part of something else (a digit, ".", a Latin letter), not a lead."""
    if lead not in _PLUS_SIGNS:
        return False
    if not start:
        return glued
    previous = text[start - 1]
    return not (
        previous.isspace()
        or previous in _BEFORE_PLUS
        or Category.get(previous) in (Category.OPEN_PUNCTUATION, Category.INITIAL_PUNCTUATION)
        # Prose without spaces (Chinese, Japanese, Korean) runs into a number: as in the
        # word check, only a Latin letter joins it.
        or (is_letter(previous) and not _is_latin_letter(previous))
    )


def _followed_by_identifier(text: str, end: int) -> bool:
    """Whether a separator and a letter or digit follow ``end``: "555-123-4567-A"."""
    return text[end : end + 1] in _ID_SEPARATORS and text[end + 1 : end + 2].isalnum()


def _is_latin_letter(char: str) -> bool:
    if char.isascii():  # the common case, without libphonenumber's Unicode tables
        return char.isalpha()
    if not is_letter(char) and Category.get(char) != Category.NON_SPACING_MARK:
        return False
    return Block.get(char) in _LATIN_BLOCKS


def _is_invalid_punctuation(char: str) -> bool:
    if char.isascii():
        return char in _ASCII_INVALID_PUNCTUATION
    return Category.get(char) == Category.CURRENCY_SYMBOL


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit ASCII and full-width parentheses and plus plain, as
    libphonenumber reads them."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() else _FULL_WIDTH.get(char, char)
        for char in text
    )


_FULL_WIDTH = {"\uff08": "(", "\uff09": ")", "\uff0b": "+"}
