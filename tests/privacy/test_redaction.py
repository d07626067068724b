"""Redaction: every entity type with positive and negative examples, plus generated inputs."""

from __future__ import annotations

import dataclasses
import json
import re
import string
from functools import cache

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from phonenumbers import PhoneNumberFormat, PhoneNumberType

import closedloop.feedback as fb
from _support.spans import client_for, llm_spans
from closedloop.privacy import (
    PhoneRedactor,
    RedactionPipeline,
    RedactionResult,
    RegexRedactor,
    default_redactors,
    redact_emails,
    redact_ssns,
)
from closedloop.privacy._redaction.base import replace_spans
from closedloop.testing import OpenAICompatibleServer

# Fake credentials are split so that secret scanners do not flag this file.
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM"

# (entity as written, redacted form); each is checked as "Before <x> after." with a count of 1.
POSITIVE = {
    "email": [
        ("john.doe@example.com", "<EMAIL>"),
        ("jane+tag@mail.example.co.uk", "<EMAIL>"),
        ("first_last-99@sub-domain.io", "<EMAIL>"),
        # Internationalised addresses (RFC 6531) go whole, not from the first non-ASCII letter.
        ("josé.müller@beispiel.de", "<EMAIL>"),
        ("用户@例子.广告", "<EMAIL>"),
        ("θσερ@παράδειγμα.ελ", "<EMAIL>"),
        ("zoë@xn--bcher-kva.example", "<EMAIL>"),
        ("пример@пример.рф", "<EMAIL>"),
        # RFC 5322 atext in the local part goes too, not just what follows it.
        ("john.o'reilly@company.com", "<EMAIL>"),
        ("o'brien.patrick@example.ie", "<EMAIL>"),
        ("first&last@example.com", "<EMAIL>"),
    ],
    "phone": [
        ("+1 201-555-0123", "<PHONE>"),
        ("(201) 555-0123", "<PHONE>"),
        ("201.555.0123", "<PHONE>"),
        ("+12015550123", "<PHONE>"),
        ("+44 20 7946 0958", "<PHONE>"),
        ("+44 7400 123456", "<PHONE>"),
        ("+49 30 12345678", "<PHONE>"),
        ("+49 1512 3456789", "<PHONE>"),
        ("tel:+1-201-555-0123", "tel:<PHONE>"),
        # Area codes 761, 293 and 335 are not assigned: possible numbers in a phone format.
        ("(761) 217-6614", "<PHONE>"),
        ("293-780-2892", "<PHONE>"),
        ("+1 (335) 516-7104", "<PHONE>"),
        ("1-761-217-6614", "<PHONE>"),
        ("(761) 2176614", "<PHONE>"),
        ("761 217 6614 ext. 42", "<PHONE>"),
        # Typographic separators and full-width characters, as pasted text has them.
        ("201\xa0555\xa00123", "<PHONE>"),
        ("201\u2013555\u20130123", "<PHONE>"),
        ("\uff08761\uff09217-6614", "<PHONE>"),
    ],
    "card": [
        ("4111 1111 1111 1111", "<CARD>"),
        ("4111-1111-1111-1111", "<CARD>"),
        ("4111111111111111", "<CARD>"),
        ("5555 5555 5555 4444", "<CARD>"),
        ("3782 822463 10005", "<CARD>"),
        ("4222222222222", "<CARD>"),
        ("6011 0009 9013 9424 009", "<CARD>"),
        ("4111 1111 1111 1111 12/26", "<CARD> 12/26"),
    ],
    "iban": [
        ("DE89 3704 0044 0532 0130 00", "<IBAN>"),
        ("DE89370400440532013000", "<IBAN>"),
        ("GB82 WEST 1234 5698 7654 32", "<IBAN>"),
        ("FR14 2004 1010 0505 0001 3M02 606", "<IBAN>"),
        ("NL91 ABNA 0417 1643 00", "<IBAN>"),
        ("NO93 8601 1117 947", "<IBAN>"),
        ("BE68 5390 0754 7034 THEN", "<IBAN> THEN"),
    ],
    "ssn": [
        ("123-45-6789", "<SSN>"),
        ("078-05-1120", "<SSN>"),
        ("899-99-9999", "<SSN>"),
    ],
    "ip": [
        ("192.168.1.10", "<IP>"),
        ("10.0.0.1", "<IP>"),
        ("255.255.255.255", "<IP>"),
        ("2001:db8::1", "<IP>"),
        ("::1", "<IP>"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP>"),
        ("fe80::1ff:fe23:4567:890a", "<IP>"),
        ("::ffff:192.0.2.1", "<IP>"),
    ],
    "secret": [
        ("sk-" + "abcdefghijklmnopqrstuvwxyz012345678901234567", "<SECRET>"),
        ("sk-proj-" + "Ab3_dEf-GhIjKlMnOpQrStUvWxYz0123456789", "<SECRET>"),
        ("AKIAIOSFODNN7EXAMPLE", "<SECRET>"),
        ("ASIAY34FZKBOKMUTVV7A", "<SECRET>"),
        ("ghp_" + "aB3d" * 9, "<SECRET>"),
        ("gho_" + "Zx9Q" * 9, "<SECRET>"),
        ("github_pat_11ABCDEFG0123456789abc_" + "x" * 59, "<SECRET>"),
        ("xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp", "<SECRET>"),
        ("xoxp-" + "2417-9987-abcdef123456", "<SECRET>"),
        ("Bearer abcDEF123456ghiJKL789", "Bearer <SECRET>"),
        ("bearer 0123456789abcdef0123", "bearer <SECRET>"),
        (f"Bearer {JWT}", "Bearer <SECRET>"),
        (JWT, "<SECRET>"),
    ],
}

# Look-alikes that must come through untouched.
NEGATIVE = {
    "email": ["@username said hi", "foo@localhost", "user at example dot com", "a@b.c"],
    "phone": [
        "order 12345678",
        "order #98765",
        "ticket 123456789",
        "date 2024-01-15",
        "on 15/01/2024",
        "version 1.2.3456789",
        "plain 1234567890",
        "build 20240115.3",
        "id 2937802892",  # bare digits need a valid number: ids and amounts look like this
        "ORD-2024-118822",  # valid digits, but not grouped as a phone number is
        "zip 94105-1234",
        "at 2024-01-15T08:30:00Z",
        "range 250-5000",  # possible only locally, without an area code
        "lon -122.4194",
        "tag app:1.4.2+201905281530",  # a "+" glued to a version is build metadata
        "part 555-123-4567-A",  # a suffix makes it an identifier
    ],
    "card": [
        "4111 1111 1111 1112",
        "4111-1111-1111-1112",
        "1234 5678 9012 3456",
        "4111 1111 1111",
        "4111111111111111222222",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 01",
        "DE88370400440532013000",
        "XX89 3704 0044 0532 0130 00",
        "DE00 3704 0044 0532 0130 00",
    ],
    "ssn": [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "123-00-4567",
        "123-45-0000",
        "1123-45-6789",
    ],
    "ip": [
        "999.1.1.1",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "v1.2.3.4",
        "12:30:45",
        "std::vector",
        "2001:db8:::1",
        "00:1A:2B:3C:4D:5E",
    ],
    "secret": [
        "sk-learn",
        "sk-1234567890",
        "task-abcdefghijklmnopqrstuvwxyz0123",
        "AKIA1234",
        "akiaiosfodnn7example",
        "ghp_short",
        "github_pat_short",
        "xoxo-hugs",
        "the bearer of bad news",
        "Bearer token",
        "Bearer internationalization",
        "eyJhbGciOiJIUzI1NiJ9",
    ],
}


@pytest.fixture(scope="module")
def pipeline() -> RedactionPipeline:
    return RedactionPipeline()


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        pytest.param(raw, red, id=f"{kind}:{raw}")
        for kind, rows in POSITIVE.items()
        for raw, red in rows
    ],
)
def test_entities_are_replaced_and_context_kept(
    pipeline: RedactionPipeline, raw: str, redacted: str
) -> None:
    assert pipeline.redact(f"Before {raw} after.") == RedactionResult(
        f"Before {redacted} after.", 1
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Chinese, Japanese and Korean prose has no spaces: the address ends at the script.
        (
            "请联系我们的客服经理张三先生zhang.san@example.com我们会尽快回复您的问题谢谢。",
            "请联系我们的客服经理张三先生<EMAIL>我们会尽快回复您的问题谢谢。",
        ),
        ("연락처는hong@example.kr입니다", "연락처는<EMAIL>입니다"),
        ("メールアドレスはtaro@example.jpです。", "メールアドレスは<EMAIL>です。"),
        ("用户@例子.广告。", "<EMAIL>。"),
        ("email john.o'reilly@company.com now", "email <EMAIL> now"),
        # Quotes and markup around an address stay outside it.
        ("say 'bob@example.com' twice", "say '<EMAIL>' twice"),
        ("run `bob@example.com` now", "run `<EMAIL>` now"),
        ("| bob |alice@example.com| x |", "| bob |<EMAIL>| x |"),
        # URL and key=value delimiters stay outside too.
        ("https://img.test/a.png?u=ann@example.com", "https://img.test/a.png?u=<EMAIL>"),
        ("contact=bob@example.com level=info", "contact=<EMAIL> level=info"),
        ("mailto:bob@example.com", "mailto:<EMAIL>"),
    ],
)
def test_email_context_is_kept(text: str, expected: str) -> None:
    assert redact_emails(text) == (expected, 1)


@pytest.mark.parametrize(
    "text",
    [pytest.param(text, id=f"{kind}:{text}") for kind, rows in NEGATIVE.items() for text in rows],
)
def test_look_alikes_are_kept(pipeline: RedactionPipeline, text: str) -> None:
    assert pipeline.redact(f"Before {text} after.") == RedactionResult(f"Before {text} after.", 0)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        # A "+" glued to a version or a number is build metadata, not a lead.
        ("Docker tag app:1.4.2+201905281530", "Docker tag app:1.4.2+201905281530"),
        ("Version 3.11.2+20240115 1234", "Version 3.11.2+20240115 1234"),
        ("build v2+13355167104", "build v2+13355167104"),
        ("pkg 1.0.+13355167104", "pkg 1.0.+13355167104"),
        # A separator and a letter or digit after the number: part of an identifier.
        (
            "Part number 555-123-4567-A fits the model.",
            "Part number 555-123-4567-A fits the model.",
        ),
        ("SKU 293-780-2892/B2 in stock", "SKU 293-780-2892/B2 in stock"),
        # A "+" after a space, the start, a bracket, a quote, ":", "=" or "," is a lead.
        ("delta +2025550143 bytes", "delta <PHONE> bytes"),
        ("+14155552671 is mine", "<PHONE> is mine"),
        ("Tel: +1 415 555 2671", "Tel: <PHONE>"),
        ("call +44 20 7946 0958.", "call <PHONE>."),
        ("phone=+14155552671", "phone=<PHONE>"),
        ("a,+14155552671", "a,<PHONE>"),
        ('"+14155552671"', '"<PHONE>"'),
        ("reach «+1 335 516 7104»", "reach «<PHONE>»"),
        ("请拨打+1 335 516 7104谢谢", "请拨打<PHONE>谢谢"),
        ("<td>+1 (759) 296-7443</td>", "<td><PHONE></td>"),
        ("(415) 555-2671,", "<PHONE>,"),
        ("number: 415-555-2671.", "number: <PHONE>."),
        ("(761) 217-6614", "<PHONE>"),
        ("293-780-2892", "<PHONE>"),
        ("+1 (335) 516-7104", "<PHONE>"),
    ],
)
def test_formatted_possible_numbers_only_outside_identifiers(
    pipeline: RedactionPipeline, text: str, redacted: str
) -> None:
    assert pipeline.redact(text) == RedactionResult(redacted, redacted.count("<PHONE>"))


def test_mixed_text_counts_every_entity(pipeline: RedactionPipeline) -> None:
    text = (
        "Mail jane@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, host 10.0.0.1, "
        "key AKIAIOSFODNN7EXAMPLE."
    )
    assert pipeline.redact(text) == RedactionResult(
        "Mail <EMAIL> or call <PHONE>; card <CARD>, IBAN <IBAN>, SSN <SSN>, host <IP>, "
        "key <SECRET>.",
        7,
    )


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("ref 2024 4111 1111 1111 1111 ok", "ref 2024 <CARD> ok"),
        ("4111 1111 1111 1111 123-45-6789", "<CARD> <SSN>"),
        ("10.0.0.123 4111 1111 1111 1111", "<IP> <CARD>"),
        ("4111 1111 1111 1111 192.168.1.1", "<CARD> <IP>"),
    ],
)
def test_card_next_to_other_numbers_is_still_found(
    pipeline: RedactionPipeline, text: str, redacted: str
) -> None:
    assert pipeline.redact(text) == RedactionResult(redacted, redacted.count("<"))


def test_iban_followed_by_a_word_and_another_iban(pipeline: RedactionPipeline) -> None:
    text = "BE68 5390 0754 7034 THEN DE89 3704 0044 0532 0130 00"
    assert pipeline.redact(text) == RedactionResult("<IBAN> THEN <IBAN>", 2)


def test_matches_exposed_by_a_replacement_are_redacted_too(pipeline: RedactionPipeline) -> None:
    # The phone match swallows the last "1"; only then does "1.2.3.4" stand alone as an address.
    assert pipeline.redact("1.2.3.4.1-201-555-0123") == RedactionResult("<IP>.<PHONE>", 2)


def test_email_sharing_characters_with_the_previous_one(pipeline: RedactionPipeline) -> None:
    text = "john.doe@example.comghp_abc.def@example.com"
    assert pipeline.redact(text) == RedactionResult("<EMAIL><EMAIL>", 2)


@pytest.mark.parametrize(
    "text",
    [raw for rows in POSITIVE.values() for raw, _ in rows]
    + [text for rows in NEGATIVE.values() for text in rows],
)
def test_redacting_twice_changes_nothing(pipeline: RedactionPipeline, text: str) -> None:
    once = pipeline.redact(f"x {text} y")
    assert pipeline.redact(once.text) == RedactionResult(once.text, 0)


def test_empty_text(pipeline: RedactionPipeline) -> None:
    assert pipeline.redact("") == RedactionResult("", 0)


def test_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RedactionResult("x", 0).count = 1  # type: ignore[misc]


def test_phone_region_reads_national_numbers() -> None:
    text = "ring 020 7946 0958"
    assert RedactionPipeline(phone_region="GB").redact(text).text == "ring <PHONE>"
    assert RedactionPipeline().redact(text).count == 0


def test_unknown_phone_region_is_rejected() -> None:
    with pytest.raises(ValueError, match="phone_region"):
        PhoneRedactor("ZZ")


def test_extra_redactors_run_after_the_built_ins() -> None:
    seen: list[str] = []

    def shout(text: str) -> tuple[str, int]:
        seen.append(text)
        return text.replace("secret plan", "<PLAN>"), text.count("secret plan")

    employee = RegexRedactor(r"\bEMP-\d{6}\b", "<EMPLOYEE_ID>")
    pipeline = RedactionPipeline(extra=[employee, shout])
    result = pipeline.redact("EMP-123456 mailed bob@example.com the secret plan")
    assert result == RedactionResult("<EMPLOYEE_ID> mailed <EMAIL> the <PLAN>", 3)
    assert seen[0] == "<EMPLOYEE_ID> mailed <EMAIL> the secret plan"


def test_passes_are_bounded_when_a_redactor_keeps_rewriting() -> None:
    def exclaim(text: str) -> tuple[str, int]:
        return text + "!", 1

    assert RedactionPipeline([], extra=[exclaim]).redact("hi") == RedactionResult("hi!!!", 3)


def test_explicit_redactors_replace_the_built_ins() -> None:
    pipeline = RedactionPipeline([redact_emails])
    assert pipeline.redact("bob@example.com 4111 1111 1111 1111") == RedactionResult(
        "<EMAIL> 4111 1111 1111 1111", 1
    )
    assert RedactionPipeline([]).redact("bob@example.com").count == 0


def test_non_callable_redactor_is_rejected() -> None:
    with pytest.raises(TypeError, match="not callable"):
        RedactionPipeline(extra=["EMP-\\d+"])  # type: ignore[list-item]


def test_default_redactors_are_a_fresh_list() -> None:
    redactors = default_redactors()
    redactors.clear()
    assert default_redactors()


def test_regex_redactor_counts_and_accepts_compiled_patterns() -> None:
    redactor = RegexRedactor(re.compile(r"order-\d+", re.IGNORECASE), "<ORDER>")
    assert redactor("ORDER-1 and order-22, not order-") == ("<ORDER> and <ORDER>, not order-", 2)
    assert redactor("nothing here") == ("nothing here", 0)


def test_regex_redactor_never_touches_placeholders() -> None:
    redactor = RegexRedactor(r"[A-Z]{4,}", "<CAPS>")
    assert redactor("<EMAIL> wrote HELLO to <PHONE>") == ("<EMAIL> wrote <CAPS> to <PHONE>", 1)
    assert redactor("<EMAIL> wrote <CAPS> to <PHONE>") == ("<EMAIL> wrote <CAPS> to <PHONE>", 0)


def test_regex_redactor_placeholder_is_literal() -> None:
    assert RegexRedactor(r"x+", r"<\1>")("a xx b") == (r"a <\1> b", 1)


def test_regex_redactor_rejects_empty_matches() -> None:
    with pytest.raises(ValueError, match="empty string"):
        RegexRedactor(r"\d*", "<N>")


# --- Generated cards -----------------------------------------------------------------------

# Surrounding text without digits, so any digit in the output comes from the card.
PROSE = st.text(alphabet=string.ascii_letters + " .,;:!?'()\n", max_size=40)


def luhn_check_digit(body: str) -> int:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:  # doubled once the check digit is appended
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return (10 - total % 10) % 10


@st.composite
def card_numbers(draw: st.DrawFn, *, valid: bool) -> tuple[str, str]:
    """A card number as digits and as written: ungrouped, or in groups of 3+ digits."""
    length = draw(st.integers(13, 19))
    body = draw(st.text(alphabet=string.digits, min_size=length - 1, max_size=length - 1))
    check = luhn_check_digit(body)
    if not valid:
        check = (check + draw(st.integers(1, 9))) % 10
    digits = body + str(check)
    groups: list[str] = []
    rest = digits
    while rest:
        size = draw(st.integers(3, 8)) if draw(st.booleans()) else len(rest)
        if len(rest) - size < 3:
            size = len(rest)
        groups.append(rest[:size])
        rest = rest[size:]
    written = groups[0]
    for group in groups[1:]:
        written += draw(st.sampled_from(" -")) + group
    return digits, written


@settings(max_examples=300, deadline=None)
@given(card=card_numbers(valid=True), before=PROSE, after=PROSE)
def test_generated_valid_cards_are_redacted(
    pipeline: RedactionPipeline, card: tuple[str, str], before: str, after: str
) -> None:
    digits, written = card
    result = pipeline.redact(f"{before} {written} {after}")
    assert result.text.count("<CARD>") == 1
    left = re.sub(r"\D", "", result.text)
    assert not any(digits[i : i + 4] in left for i in range(len(digits) - 3))


@settings(max_examples=300, deadline=None)
@given(card=card_numbers(valid=False), before=PROSE, after=PROSE)
def test_generated_invalid_cards_are_not_cards(
    pipeline: RedactionPipeline, card: tuple[str, str], before: str, after: str
) -> None:
    assert "<CARD>" not in pipeline.redact(f"{before} {card[1]} {after}").text


# --- Generated phone numbers ---------------------------------------------------------------

PHONE_REGIONS = ("US", "GB", "DE", "FR", "JP", "IN", "BR", "AU", "CH", "ES", "IT", "NL", "SE")
PHONE_TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE)
EXAMPLE_NUMBERS = [
    (region, number)
    for region in PHONE_REGIONS
    for kind in PHONE_TYPES
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]
FORMATS = (
    PhoneNumberFormat.E164,
    PhoneNumberFormat.INTERNATIONAL,
    PhoneNumberFormat.NATIONAL,
    PhoneNumberFormat.RFC3966,
)


# libphonenumber reads "x" as an extension marker, so "(x +44 ..." right before a number makes
# it reject the whole candidate; prose for this test leaves the letter out.
PHONE_PROSE = st.text(
    alphabet=string.ascii_letters.replace("x", "").replace("X", "") + " .,;:!?'()\n", max_size=40
)


@cache
def pipeline_for(region: str) -> RedactionPipeline:
    return RedactionPipeline(phone_region=region)


@settings(max_examples=200, deadline=None)
@given(
    example=st.sampled_from(EXAMPLE_NUMBERS),
    number_format=st.sampled_from(FORMATS),
    before=PHONE_PROSE,
    after=PHONE_PROSE,
)
def test_generated_valid_phone_numbers_are_redacted(
    example: tuple[str, phonenumbers.PhoneNumber],
    number_format: int,
    before: str,
    after: str,
) -> None:
    region, number = example
    written = phonenumbers.format_number(number, number_format)
    # National format only means something in the number's own region.
    pipeline = pipeline_for(region if number_format == PhoneNumberFormat.NATIONAL else "US")
    result = pipeline.redact(f"{before} {written} {after}")
    assert result.text.count("<PHONE>") == 1
    assert not re.search(r"\d", result.text)


# --- Generated mixtures --------------------------------------------------------------------

SAMPLES = [raw for rows in POSITIVE.values() for raw, _ in rows] + [
    text for rows in NEGATIVE.values() for text in rows
]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(SAMPLES), PROSE, st.text(alphabet="0123456789 -.:+@", max_size=12)
        ),
        max_size=8,
    ),
    glue=st.sampled_from([" ", "", "-", ".", ":", "\n"]),
)
def test_generated_mixtures_are_idempotent(
    pipeline: RedactionPipeline, pieces: list[str], glue: str
) -> None:
    once = pipeline.redact(glue.join(pieces))
    assert pipeline.redact(once.text) == RedactionResult(once.text, 0)


def test_prompts_and_feedback_comments_lose_the_whole_address(
    server: OpenAICompatibleServer, exporter: InMemorySpanExporter, instrumented: object
) -> None:
    # Prompts, outputs and feedback comments pass the same pipeline, on the way to the span.
    prompt = "Write to josé.müller@beispiel.de or call (761) 217-6614."
    client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    [call] = llm_spans(exporter)
    fb.comment(call.context, "Helpful! Reply to θσερ@παράδειγμα.ελ or 用户@例子.广告")
    [comment] = [
        span for span in exporter.get_finished_spans() if span.name == "closedloop.feedback"
    ]
    [message] = json.loads(call.attributes["gen_ai.input.messages"])
    assert message["parts"][0]["content"] == "Write to <EMAIL> or call <PHONE>."
    assert comment.events[0].attributes["gen_ai.evaluation.explanation"] == (
        "Helpful! Reply to <EMAIL> or <EMAIL>"
    )


# The SSA's rules applied to each dash-anchored candidate in Python: the reference for the
# pattern that encodes them.
_SSN_CANDIDATE = re.compile(r"-(?<=\d{3}-)(?<![\w-]\d{3}-)\d\d-\d{4}(?!\w|-\d)", re.ASCII)


def _ssns_by_the_rules(text: str) -> tuple[str, int]:
    spans = []
    for match in _SSN_CANDIDATE.finditer(text):
        area, group, serial = text[match.start() - 3 : match.end()].split("-")
        never_issued = area in ("000", "666") or area[0] == "9" or group == "00"
        if not (never_issued or serial == "0000"):
            spans.append((match.start() - 3, match.end()))
    return replace_spans(text, spans, "<SSN>")


def _digits(size: int, edge_cases: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(edge_cases), st.text(alphabet=string.digits, min_size=size, max_size=size)
    )


# SSN-shaped numbers, often with what the rules turn down (area 000, 666, 9xx, group 00,
# serial 0000) or next to what makes them no SSN, among other digit groups.
SSN_SHAPED = st.builds(
    "{}-{}-{}".format,
    _digits(3, ["000", "666", "900", "999", "899", "665", "667", "001"]),
    _digits(2, ["00", "01", "10"]),
    _digits(4, ["0000", "0001", "1000"]),
)
SSN_LIKE = st.lists(
    st.one_of(
        SSN_SHAPED,
        st.text(alphabet=string.digits, min_size=1, max_size=5),
        st.sampled_from(["-", "--", " ", "a", ".", "1"]),
    ),
    max_size=8,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(text=SSN_LIKE)
def test_ssns_replaced_are_those_the_ssa_rules_allow(text: str) -> None:
    assert redact_ssns.detect(text) == _ssns_by_the_rules(text)
