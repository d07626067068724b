"""Redaction stays linear in the text and cheap on numeric data: work is counted, never timed.

libphonenumber is the costly step (about 30 µs per candidate it parses), so the phone tests
count the characters it is asked to parse and the text its matcher scans; the pipeline tests
count redactor calls. The property tests pin what the faster phone search must not change:
libphonenumber's own verdicts on ordinary text, and that redacting twice changes nothing.
"""

from __future__ import annotations

import itertools
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from phonenumbers import phonenumbermatcher

from closedloop.privacy import (
    PhoneRedactor,
    RedactionPipeline,
    RedactionResult,
    Redactor,
    default_redactors,
    redact_cards,
    redact_emails,
)
from closedloop.privacy._redaction._formatted_numbers import FormattedNumbers

SIZE = 16_000  # characters of each generated input: enough for per-character costs to show


def repeat(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def numeric_csv(size: int = SIZE) -> str:
    rng = random.Random(7)
    rows = []
    while sum(map(len, rows)) < size:
        ints = [str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(5)]
        rows.append(",".join([*ints, f"{rng.random() * 1000:.4f}", str(rng.randint(0, 99999))]))
    return "\n".join(rows)[:size]


def random_digits(size: int = SIZE) -> str:
    rng = random.Random(3)
    return "".join(rng.choice(string.digits) for _ in range(size))


def seven_digit_tokens(size: int = SIZE) -> str:
    return " ".join(f"{(i * 7919 + 1234567) % 9_000_000 + 1_000_000}" for i in range(size // 8))


def printed_floats(size: int = SIZE) -> str:
    """A vector as numpy prints it, the way embeddings end up in prompts."""
    return " ".join(f"{(i * 7919) % 20000 / 10000 - 1:.4f}" for i in range(size // 7))


NUMERIC_DATA: dict[str, Callable[[], str]] = {
    "1234567 repeated": lambda: repeat("1234567 "),
    "digit run": random_digits,
    "numeric csv": numeric_csv,
    "seven-digit tokens": seven_digit_tokens,
    "printed floats": printed_floats,
    "digits and dashes": lambda: repeat("12-"),
    "digits and dots": lambda: repeat("1."),
    "digits and colons": lambda: repeat("1:"),
    "single digits": lambda: repeat("1 "),
    "phone punctuation": lambda: repeat("1 (2) 3-4.5/"),
    "card-sized groups": lambda: repeat("4111 "),
    "fullwidth digits": lambda: repeat("\uff11\uff12\uff13\uff14\uff15\uff16\uff17 "),
}


@dataclass
class PhoneWork:
    parsed: int = 0  # characters handed to phonenumbers.parse
    scanned: int = 0  # characters handed to PhoneNumberMatcher


@pytest.fixture
def phone_work(monkeypatch: pytest.MonkeyPatch) -> PhoneWork:
    work = PhoneWork()
    parse, matcher = phonenumbermatcher.parse, phonenumbers.PhoneNumberMatcher

    def counting_parse(number: str, *args: object, **kwargs: object) -> object:
        work.parsed += len(number)
        return parse(number, *args, **kwargs)

    def counting_matcher(text: str, *args: object, **kwargs: object) -> object:
        work.scanned += len(text)
        return matcher(text, *args, **kwargs)

    monkeypatch.setattr(phonenumbermatcher, "parse", counting_parse)
    monkeypatch.setattr(phonenumbers, "PhoneNumberMatcher", counting_matcher)
    return work


# --- Phones: how much libphonenumber is asked to do ------------------------------------------


@pytest.mark.parametrize("make", NUMERIC_DATA.values(), ids=NUMERIC_DATA.keys())
def test_numeric_data_is_barely_parsed(phone_work: PhoneWork, make: Callable[[], str]) -> None:
    text = make()
    PhoneRedactor()(text)
    assert phone_work.parsed <= len(text) / 10
    assert phone_work.scanned <= len(text) / 10


def phone_list(size: int = SIZE) -> str:
    return " ".join(f"201555{index % 10000:04d}" for index in range(size // 11))


def bracketed_phone_list(size: int = SIZE) -> str:
    return " ".join(f"(201) 555-{index % 10000:04d}" for index in range(size // 15))


def test_a_list_of_phone_numbers_is_parsed_about_once(phone_work: PhoneWork) -> None:
    text = phone_list()
    redacted, count = PhoneRedactor()(text)
    assert (redacted, count) == (" ".join(["<PHONE>"] * count), SIZE // 11)
    assert phone_work.parsed <= 1.2 * len(text)


def test_a_number_after_much_numeric_data_is_still_found() -> None:
    # libphonenumber's matcher gives up on a text after 65,535 failed candidates; windows
    # are matched one by one, so none of them runs out.
    text = "1." * 70_000 + " call 201-555-0123"
    assert PhoneRedactor()(text) == ("1." * 70_000 + " call <PHONE>", 1)


@pytest.mark.parametrize("make", [phone_list, bracketed_phone_list, printed_floats, numeric_csv])
def test_phone_work_grows_linearly(phone_work: PhoneWork, make: Callable[[int], str]) -> None:
    def work(size: int) -> tuple[int, int]:
        phone_work.parsed = phone_work.scanned = 0
        PhoneRedactor()(make(size))
        return phone_work.parsed, phone_work.scanned

    small, large = work(SIZE), work(8 * SIZE)
    for once, eightfold in zip(small, large, strict=True):
        assert eightfold <= 8.8 * once + 100


# --- Phones: same verdicts as libphonenumber on ordinary text ----------------------------------

HINT = re.compile(r"\d(?:\D{0,4}\d){6}")


def whole_text_matcher(text: str, region: str) -> tuple[str, int]:
    """The redactor before it looked at windows: the matcher over the whole text, once for
    valid numbers grouped as the region groups them and once for formatted possible ones,
    repeated until nothing changes (the pipeline's passes did that)."""
    formatted = FormattedNumbers(region)
    total = 0
    for _ in range(3):
        if not HINT.search(text):
            break
        grouped = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
        )
        possible = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.POSSIBLE
        )
        spans = [(number.start, number.end) for number in grouped] + [
            (number.start, number.end) for number in possible if formatted.accepts(text, number)
        ]
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        if not merged:
            break
        for start, end in reversed(merged):
            text = text[:start] + "<PHONE>" + text[end:]
        total += len(merged)
    return text, total


PHONE_PIECES = [
    "+1 201-555-0123",
    "(201) 555-0123",
    "201.555.0123",
    "2015550123",
    "310-1234",
    "+44 20 7946 0958",
    "020 7946 0958",
    "01 23 45 67 89",
    "+33 1 23 45 67 89",
    "4111 1111 1111 1111",
    "123-45-6789",
    "10.0.0.1",
    "2024-01-15 08",
    ":30",
    "15/01/2024",
    " ext. 45",
    " x12",
    "#2015550123",
    ";ext=9",
    "tel:",
    "call",
]
NEAR_NUMBERS = st.text(alphabet="0123456789 -.()+/x:,#", max_size=6)
PHONE_TEXTS = st.lists(
    st.one_of(st.sampled_from(PHONE_PIECES), NEAR_NUMBERS, st.sampled_from([" ", "\n", "ab"])),
    max_size=6,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=PHONE_TEXTS, region=st.sampled_from(["US", "GB", "FR"]))
def test_phones_match_libphonenumber_on_the_whole_text(text: str, region: str) -> None:
    # Up to 24 digits a run is one window, exactly the matcher's candidate; longer runs of
    # numbers are data, split differently (see test_lists_of_numbers_are_redacted).
    assume(sum(char.isdigit() for char in text) <= 24)
    assert PhoneRedactor(region)(text) == whole_text_matcher(text, region)


# Numbers around extensions: what follows a number found inside a run is read again, and an
# extension ending in "#" may then take the digits after the run ("45#2015550123").
EXTENSION_PIECES = [":30 ", "201.555.0123", " ext. 45", " x12", "#", "#2015550123", "- 45#", " "]


def test_phones_match_libphonenumber_around_extensions() -> None:
    redactor = PhoneRedactor("US")
    texts = [
        "".join(pieces)
        for size in range(1, 5)
        for pieces in itertools.product(EXTENSION_PIECES, repeat=size)
    ]
    assert [text for text in texts if redactor(text) != whole_text_matcher(text, "US")] == []
    assert [text for text in texts if redactor(once := redactor(text)[0]) != (once, 0)] == []


LONG_TEXTS = st.lists(
    st.one_of(st.sampled_from(PHONE_PIECES), NEAR_NUMBERS, st.sampled_from([" ", "/", " - "])),
    min_size=4,
    max_size=14,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=LONG_TEXTS, region=st.sampled_from(["US", "GB", "DE", "IN", "BR", "JP"]))
def test_phone_redaction_reaches_a_fixpoint(text: str, region: str) -> None:
    redactor = PhoneRedactor(region)
    once, _ = redactor(text)
    assert redactor(once) == (once, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Replacing the last number changes what the middle one reads after it, and
        # replacing the middle one what the first reads: each is a neighbour of a run cut in
        # the round before, though outside the runs that round looked at.
        (
            "761 217 6614 ext. 42-761 217 6614 ext. 42-293-780-2892",
            "<PHONE>-<PHONE>-<PHONE>",
        ),
        ("761 217 6614 ext. 42-" * 4 + "293-780-2892", "-".join(["<PHONE>"] * 5)),
    ],
)
def test_phone_redaction_settles_chains_of_neighbouring_numbers(text: str, expected: str) -> None:
    redactor = PhoneRedactor("US")
    once, count = redactor(text)
    assert (once, count) == (expected, expected.count("<PHONE>"))
    assert redactor(once) == (once, 0)


@settings(max_examples=200, deadline=None)
@given(text=LONG_TEXTS)
def test_pipeline_output_is_a_fixpoint_on_long_runs_of_numbers(text: str) -> None:
    pipeline = RedactionPipeline()
    once = pipeline.redact(text)
    assert pipeline.redact(once.text) == RedactionResult(once.text, 0)


@pytest.mark.parametrize(
    ("region", "text"),
    [
        ("US", " ".join(f"201-555-{index:04d}" for index in range(12))),
        ("US", " ".join(f"(201) 555-{index:04d}" for index in range(12))),
        ("US", " / ".join(f"201 555 {index:04d}" for index in range(12))),
        ("GB", " - ".join(f"020 7946 {index:04d}" for index in range(12))),
        ("GB", " ".join(f"+44 20 7946 {index:04d}" for index in range(12))),
    ],
)
def test_lists_of_numbers_are_redacted(region: str, text: str) -> None:
    redacted, count = PhoneRedactor(region)(text)
    assert count == 12
    assert not re.search(r"\d", redacted)


# --- Pipeline: re-running redactors -------------------------------------------------------------


class Counted:
    """A redactor that counts its calls and passes on what the pipeline asks of it."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.calls = 0

    def __call__(self, text: str) -> tuple[str, int]:
        self.calls += 1
        return self.redactor(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self.redactor, name)


def counted_pipeline() -> tuple[RedactionPipeline, list[Counted]]:
    counted = [Counted(redactor) for redactor in default_redactors()]
    return RedactionPipeline(counted), counted


PII = (
    "Mail jane@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, host 10.0.0.1, key AKIAIOSFODNN7EXAMPLE."
)


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ("nothing to redact here", [1] * 7),
        (PII, [2, 2, 2, 2, 2, 2, 1]),  # all ran before the phone's replacement, which settles
        ("call 201-555-0123", [2, 2, 2, 2, 2, 2, 1]),
        ("mail jane@example.com", [2, 2, 1, 1, 1, 1, 1]),  # secrets and emails ran before it
    ],
)
def test_only_redactors_that_have_not_seen_the_latest_text_run_again(
    text: str, calls: list[int]
) -> None:
    pipeline, counted = counted_pipeline()
    pipeline.redact(text)
    assert [redactor.calls for redactor in counted] == calls


def test_an_exposed_match_reruns_the_phone_redactor_once_more() -> None:
    # The phone's replacement exposes an IP. Once that is replaced, the phone redactor runs
    # again, and so do the redactors before the IP one and the IP one itself (which does not
    # promise a fixpoint).
    pipeline, counted = counted_pipeline()
    assert pipeline.redact("1.2.3.4.1-201-555-0123") == RedactionResult("<IP>.<PHONE>", 2)
    assert [redactor.calls for redactor in counted] == [3, 3, 3, 3, 3, 3, 2]


def test_a_replacement_elsewhere_does_not_repeat_the_phone_search(phone_work: PhoneWork) -> None:
    data = numeric_csv() + "\n" + printed_floats()
    PhoneRedactor()(data)
    alone = phone_work.scanned
    phone_work.scanned = 0
    result = RedactionPipeline().redact(data + "\nsent by jane@example.com")
    assert result.text.endswith("sent by <EMAIL>")
    assert phone_work.scanned == alone


# --- Other redactors: the same answers on long and dense inputs -----------------------------


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def groups_in_cards(groups: list[str]) -> set[int]:
    """Indices of the groups some card among them covers, found the slow, obvious way."""
    covered: set[int] = set()
    for first in range(len(groups)):
        for last in range(first, len(groups)):
            digits = "".join(groups[first : last + 1])
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                covered.update(range(first, last + 1))
    return covered


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(
        st.text(alphabet=string.digits, min_size=3, max_size=6), min_size=5, max_size=40
    )
)
def test_cards_among_many_numbers_match_trying_every_window(groups: list[str]) -> None:
    text = " ".join(groups)
    assume(len(text.replace(" ", "")) > 19)
    redacted, _ = redact_cards(f"x {text} y")
    kept = redacted[2:-2].split(" ")
    covered = groups_in_cards(groups)
    assert [group for index, group in enumerate(groups) if index not in covered] == [
        piece for piece in kept if piece != "<CARD>"
    ]


def test_an_address_among_many_at_signs() -> None:
    text = "@" * 20_000 + " bob@example.com " + "a@" * 10_000
    redacted, count = redact_emails(text)
    assert count == 1
    assert redacted == "@" * 20_000 + " <EMAIL> " + "a@" * 10_000


def test_a_local_part_is_read_back_at_most_64_characters() -> None:
    assert redact_emails("x" * 70 + "@example.com") == ("x" * 6 + "<EMAIL>", 1)
