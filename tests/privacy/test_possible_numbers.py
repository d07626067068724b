"""The fast paths for possible numbers find what libphonenumber's matcher finds.

Windows are generated around the shape the fast path takes (" +1 415 555 2671) p") and
every near miss of it: brackets, slashes, other separators, extensions, digits or leads
around the number, letters, full-width characters, too many digits.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from closedloop.privacy._redaction import _formatted_numbers, _possible_numbers, phones
from closedloop.privacy._redaction._possible_numbers import (
    MAX_TRIES,
    parse_plus_number,
    plus_number_digits,
    possible_numbers,
    surely_possible,
)
from closedloop.privacy._redaction.phones import PhoneRedactor

DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5)
# Before the "+": nothing, prose, or a digit or lead the matcher would read.
BEFORE = st.sampled_from(["", " ", "a", ":", "é", "-", ".", "x", "/", ")", "(", "[", "+", "7"])
SEPARATORS = [" ", "-", ".", "/", "  ", "", "(", ")", " x", "\xa0", "\u2013", " - "]
EXTENSION = st.sampled_from(["", "", "", " ext. 12", " x 5", "#", ";ext=7", " - 42#", ":30"])
AFTER = st.text(alphabet=" )-.:/ax#+(1", max_size=3)
# International numbers as regions write them ("+44 7400 123456"), spaced by any separator.
EXAMPLES = [
    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)[::3]
    for number in [phonenumbers.example_number(region)]
    if number is not None
]
REAL = st.builds(
    lambda before, number, sep, extension, after: (
        before + number.replace(" ", sep) + extension + after
    ),
    BEFORE,
    st.sampled_from(EXAMPLES),
    st.sampled_from([" ", "-", ".", *SEPARATORS]),
    EXTENSION,
    AFTER,
)
# Anything of those parts: leads, digit groups and separators at random.
MADE_UP = st.builds(
    lambda before, lead, code, groups, extension, after: (
        before + lead + code + "".join(sep + digits for sep, digits in groups) + extension + after
    ),
    BEFORE,
    st.sampled_from(["+", "+", "\uff0b", "(+", "++", ""]),
    DIGITS,
    st.lists(st.tuples(st.sampled_from(SEPARATORS), DIGITS), max_size=6),
    EXTENSION,
    AFTER,
)
WINDOWS = st.one_of(REAL, MADE_UP)
REGIONS = st.sampled_from(["US", "GB", "DE", "IN"])


def matches(
    found: Iterable[phonenumbers.PhoneNumberMatch],
) -> list[tuple[int, int, str, phonenumbers.PhoneNumber]]:
    return [(match.start, match.end, match.raw_string, match.number) for match in found]


@settings(max_examples=3000, deadline=None)
@given(window=WINDOWS, region=REGIONS)
@example(window=" +1 415 555 2671) p", region="US")
@example(window=" +44 20 7946 0958.", region="GB")
@example(window="+1 2012-01-02 08:0", region="US")  # a time stamp, then ":MM" cut short
@example(window=" +1 415 555 2671 x", region="US")
@example(window="\n+1 415 555 2671\n+1", region="US")  # a list of numbers
@example(window=" +1 415 555 2671+12", region="US")
def test_the_fast_path_finds_what_the_matcher_finds(window: str, region: str) -> None:
    expected = phonenumbers.PhoneNumberMatcher(
        window, region, leniency=phonenumbers.Leniency.POSSIBLE, max_tries=MAX_TRIES
    )
    assert matches(possible_numbers(window, region)) == matches(expected)


@pytest.mark.parametrize(
    ("window", "region"), [(" +1 415 555 2671) p", "US"), ("+44 20-7946-0958", "GB")]
)
def test_an_international_number_alone_skips_the_matcher(
    window: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_matcher(*args: object, **kwargs: object) -> None:
        raise AssertionError("the matcher ran")

    monkeypatch.setattr(_possible_numbers.phonenumbers, "PhoneNumberMatcher", no_matcher)
    assert len(list(possible_numbers(window, region))) == 1


# Leading digits for "+" numbers: country codes, with the national prefixes and leading zeros
# parse has to strip or keep ("+44 0 20", "+39 06", "+7 8", "+1 1"), and no country code.
LEADS = [
    "1", "1 1", "7", "7 8", "44", "44 0", "44 0 20", "39", "39 06", "39 0", "39 00", "49", "49 0",
    "55", "55 0", "55 0 21", "55 0 15", "54 0", "54 15", "54 0 11 15", "54 9", "52 1", "33 0",
    "86", "86 0", "61 0", "262", "290", "800", "808", "870", "881", "882", "979", "0", "011 44",
    "00", "28", "999", "",
]  # fmt: skip
SEPARATOR = st.sampled_from(" .-")
PLUS_NUMBERS = st.builds(
    lambda lead, sep, groups: (
        "+" + lead.replace(" ", sep) + "".join(sep + digits for sep, digits in groups)
    ),
    st.sampled_from(LEADS),
    SEPARATOR,
    st.lists(
        st.tuples(SEPARATOR, st.text(alphabet="0123456789", min_size=1, max_size=6)), max_size=6
    ),
).filter(
    lambda number: (
        _possible_numbers._PLUS_NUMBER.fullmatch(number) is not None
        and sum(char.isdigit() for char in number) <= 20
    )
)
PARSE_REGIONS = st.sampled_from(["US", "GB", "DE", "IT", "BR", "RU", "AR", "MX", "ZZ", "001"])


def parse(candidate: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(candidate, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None


@settings(max_examples=3000, deadline=None)
@given(candidate=PLUS_NUMBERS, region=PARSE_REGIONS)
@example(candidate="+44 0 20 7946 0958", region="GB")
@example(candidate="+39 06 6982 1234", region="US")
@example(candidate="+7 8 495 123 4567", region="DE")
@example(candidate="+011 44 20 7946 0958", region="US")
def test_parse_plus_number_is_parse(candidate: str, region: str) -> None:
    assert parse_plus_number(candidate, region) == parse(candidate, region)


@pytest.mark.parametrize(
    ("window", "region"),
    [(" +1 415 555 2671) p", "US"), ("+44 20-7946-0958", "GB"), (" +39 06 6982 1234.", "IT")],
)
def test_without_the_parse_steps_parse_itself_gives_the_same_numbers(
    window: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = matches(possible_numbers(window, region))
    monkeypatch.setattr(_possible_numbers, "HAS_PARSE_STEPS", False)
    assert matches(possible_numbers(window, region)) == fast != []


@settings(max_examples=3000, deadline=None)
@given(candidate=PLUS_NUMBERS)
@example(candidate="+1 415 555 2671")
@example(candidate="+44 0 20 7946 0958")  # a national prefix parse strips: not sure
@example(candidate="+1 310 555 0123 4")  # too long for the US
def test_a_surely_possible_number_is_possible(candidate: str) -> None:
    # The region is left out: a "+" number is read the same from anywhere.
    if surely_possible(plus_number_digits(candidate)):
        number = parse(candidate, "US")
        assert number is not None
        reason = phonenumbers.is_possible_number_with_reason(number)
        assert reason == phonenumbers.ValidationResult.IS_POSSIBLE


@pytest.mark.parametrize(
    "candidate", ["+1 415 555 2671", "+44 20 7946 0958", "+49 30 901820", "+33 1 42 68 53 00"]
)
def test_common_international_numbers_are_surely_possible(candidate: str) -> None:
    assert surely_possible(plus_number_digits(candidate))


TEXTS = st.lists(WINDOWS, min_size=1, max_size=4).map("".join)


class WithoutRunShortcut(PhoneRedactor):
    """The phone redactor that looks at the windows of every run."""

    def _is_apart_plus_number(self, *args: object, **kwargs: object) -> bool:
        return False


class WithoutShortcut(WithoutRunShortcut):
    """The phone redactor that asks libphonenumber's steps about every window."""

    def _lone_plus_number(self, *args: object, **kwargs: object) -> None:
        return None


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS, region=REGIONS)
@example(text=" +1 415 555 2671) p", region="US")
@example(text="1.4.2+201905281530 and +1 415 555 2671x", region="US")
def test_the_lone_plus_number_shortcut_changes_no_verdict(text: str, region: str) -> None:
    assert PhoneRedactor(region).detect(text) == WithoutShortcut(region).detect(text)


def test_the_lone_plus_number_shortcut_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_possible_numbers.phonenumbers, "PhoneNumberMatcher", None)
    monkeypatch.setattr(_possible_numbers, "parse_plus_number", None)
    text = "Call +1 415 555 2671 or +44 20 7946 0958."
    assert PhoneRedactor("US").detect(text) == ("Call <PHONE> or <PHONE>.", 2)


def test_a_plus_number_apart_skips_its_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phones, "phone_windows", None)
    text = "Call +1 415 555 2671 or\n+44 20 7946 0958, {+49 30 901820}\n+1 415 555 2672\n+1 2"
    redacted = "Call <PHONE> or\n<PHONE>, {<PHONE>}\n<PHONE>\n+1 2"
    assert PhoneRedactor("US").detect(text) == (redacted, 4)


# Every ASCII character, none, and non-ASCII ones: a space, a full-width bracket and plus,
# an Arabic-Indic digit, a Latin letter.
AROUND = ["", *map(chr, range(128)), "\u3000", "\uff08", "\uff0b", "\u0661", "é"]


# What may follow: nothing, a letter (after "." an identifier), a Unicode digit, a digit the
# run reaches after three separators, an extension, the next number of a list.
@pytest.mark.parametrize("rest", ["", "a", "\u0661", "  5", "ext 5", "+1 761 217 6615"])
def test_a_plus_number_between_any_characters_is_judged_as_its_windows_judge_it(
    rest: str,
) -> None:
    with_shortcut, without = PhoneRedactor("US"), WithoutRunShortcut("US")
    differing = []
    for before, after in itertools.product(AROUND, AROUND):
        # Possible but not valid (area code 761 is unassigned): only its format makes it one.
        text = f"{before}+1 761 217 6614{after}{rest}"
        if with_shortcut.detect(text) != without.detect(text):
            differing.append((before, after))
    assert differing == []


@settings(max_examples=1500, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.sampled_from(AROUND), PLUS_NUMBERS, st.sampled_from(AROUND)),
        min_size=1,
        max_size=4,
    ),
    region=REGIONS,
)
def test_plus_numbers_apart_are_judged_as_their_windows_judge_them(
    parts: list[tuple[str, str, str]], region: str
) -> None:
    text = "".join(before + number + after for before, number, after in parts)
    assert PhoneRedactor(region).detect(text) == WithoutRunShortcut(region).detect(text)


@pytest.mark.parametrize("glued", [False, True])
def test_numbers_apart_from_their_surroundings_are_judged_as_every_check_judges_them(
    glued: bool,
) -> None:
    characters = [chr(code) for code in range(128)] + ["", "é", "\u3000", "\uff08", "\uff09"]
    number = "+1 415 555 2671"
    differing = []
    for before, after, rest in itertools.product(characters, characters, ["", "x", "1"]):
        text = f"{before}{number}{after}{rest}"
        start, end = len(before), len(before) + len(number)
        fast = _formatted_numbers.joined_to_its_surroundings(text, start, end, "+", glued=glued)
        if fast != _formatted_numbers._joined(text, start, end, "+", glued=glued):
            differing.append((before, after))
    assert differing == []
