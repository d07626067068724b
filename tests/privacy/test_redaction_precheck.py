"""The pre-checks are sound: skipping a detector they reject never changes what is redacted.

Each built-in detector is run twice on generated text: as the pipeline runs it, behind its
pre-check, and with the pre-check skipped (its ``detect`` called directly). The texts are
built from PII fragments, the characters the pre-checks test for (digits around each
threshold, "@", ":", token prefixes), Unicode digits, full-width characters and separators.
"""

from __future__ import annotations

import copy

from hypothesis import example, given, settings
from hypothesis import strategies as st

from closedloop.privacy import RedactionPipeline, Redactor, default_redactors
from closedloop.privacy._redaction._candidates import (
    CandidateRedactor,
    RedactorChain,
    SubstitutingRedactor,
)
from closedloop.privacy._redaction._detector import Detector, counts_of
from closedloop.privacy._redaction._zones import Zones
from closedloop.privacy._redaction.base import reaches_fixpoint
from closedloop.privacy._redaction.cards import redact_cards
from closedloop.privacy._redaction.ibans import redact_ibans
from closedloop.privacy._redaction.secrets import _ALL_HINTS

# Fake credentials are split so that secret scanners do not flag this file.
FRAGMENTS = [
    *("ann.lee@example.com", "用户@例子.广告", "a@b", "@", "x@y.z", "user@"),
    *("+1 415 555 2671", "(415) 555-2671", "415.555.2671", "4155552671", "555-2671"),
    *("+683 4002", "+500 31234", "\uff0b683 \uff14\uff10\uff10\uff12"),  # 7 and 8 digits
    *("+44 20 7946 0958", "020 7946 0958", "+49 30 901820", "(761) 217-6614", " ext. 42"),
    *("4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005", "4111 1111 1111"),
    "4222222222222",  # a card of 13 digits, the fewest
    *("GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "GB82", "WEST"),
    "GB59 WEST ABCD EFGH IJ1",  # passes mod 97 with only four digits
    *("123-45-6789", "078-05-1120", "12-34", "1.2.3.4", "10.0.12.7", "256.1.1.1"),
    *("::1", "fe80::1ff:fe23:4567:890a", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1", "::"),
    *("sk-" + "proj-abcdefghijklmnopqrstuvwx", "AKIA" + "IOSFODNN7EXAMPLE", "ghp_" + "a" * 36),
    *("xoxb-" + "1234567890-abc", "xoxp-" + "1234567890", "ASIA" + "IOSFODNN7EXAMPLE"),
    *("eyJhbGciOi." + "eyJzdWIiOi.sig", "Bearer " + "a1" * 10, "BEARER " + "b2" * 10),
    *("bearer", "EARER", "IA", "sk-", "xox", "eyJ", "_", "github_pat_" + "b" * 22),
    *("<PHONE>", "<EMAIL>", "<IP>", "<CARD>"),
]
# Digits (ASCII, full-width, Arabic-Indic, Devanagari), separators and leads libphonenumber
# reads (plain and full-width), and the characters the pre-checks look for.
EDGE = (
    "0123456789"
    "\uff10\uff11\uff15\uff19\u0660\u0665\u0669\u0966\u096f"
    " -.()/+\u00a0\u3000\u2013\uff0b\uff08\uff09\uff0d"
    ":@_#x,;"
    "aAeIké"
)
TEXTS = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(alphabet=EDGE, max_size=16),
        st.text(alphabet="0123456789", min_size=1, max_size=14),
    ),
    max_size=8,
).map("".join)
REGIONS = st.sampled_from(["US", "GB", "DE", "IN"])
BENCHMARK_TEXT = (
    "Customer Ann Lee (ann.lee@example.com, +1 415 555 2671) paid with 4111 1111 1111 1111; "
    "refund to IBAN GB82 WEST 1234 5698 7654 32. Server 10.0.12.7 logged token "
    "sk-" + "proj-abcdefghijklmnopqrstuvwx for the request. "
)


def detectors(region: str) -> list[Detector]:
    """Every built-in detector, the parts of chains included."""
    found: list[Detector] = []
    for redactor in default_redactors(region):
        assert isinstance(redactor, Detector)
        found.append(redactor)
        if isinstance(redactor, RedactorChain):
            found += [part for part in redactor.parts if isinstance(part, Detector)]
    return found


class Unconditional:
    """A detector with its pre-check skipped, as the pipeline sees any other redactor."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.reaches_fixpoint = reaches_fixpoint(detector)

    def __call__(self, text: str) -> tuple[str, int]:
        return self.detector.detect(text)


def unconditional(redactor: Redactor) -> Redactor:
    assert isinstance(redactor, Detector)
    if isinstance(redactor, RedactorChain):
        parts = [unconditional(part) for part in redactor.parts]
        return Unconditional(RedactorChain("unconditional", *parts))
    return Unconditional(redactor)


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS, region=REGIONS)
@example(text=BENCHMARK_TEXT * 3, region="US")
@example(text="\uff14\uff11\uff15 \uff15\uff15\uff15 \uff12\uff16\uff17\uff11", region="US")
def test_a_rejected_text_is_one_the_detector_leaves_alone(text: str, region: str) -> None:
    counts = counts_of(text)
    for detector in detectors(region):
        if not detector.precheck(text, *counts):
            assert detector.detect(text) == (text, 0), detector


@settings(max_examples=500, deadline=None)
@given(text=TEXTS, region=REGIONS)
@example(text=BENCHMARK_TEXT * 3, region="US")
def test_the_pipeline_redacts_as_if_every_detector_ran(text: str, region: str) -> None:
    every = RedactionPipeline([unconditional(redactor) for redactor in default_redactors(region)])
    assert RedactionPipeline(phone_region=region).redact(text) == every.redact(text)


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS, region=REGIONS)
@example(text="+683 4002", region="US")  # 7 digits, the fewest of a phone number
@example(text="1.2.3.4", region="US")  # 4 digits, the fewest of an IPv4 address
def test_a_detector_rejects_text_with_fewer_digits_than_it_needs(text: str, region: str) -> None:
    # The pipeline does not ask it about such text, so its pre-check must say no to it.
    digits, others, shape = counts_of(text)
    for detector in detectors(region):
        if digits + others < detector.min_digits:
            assert not detector.precheck(text, digits, others, shape), detector


def test_the_detectors_that_need_digits_say_so() -> None:
    needs = {repr(detector): detector.min_digits for detector in detectors("US")}
    assert needs == {
        "<built-in redactor secrets>": 0,
        "<built-in redactor emails>": 0,
        "<built-in redactor ibans>": 10,
        "<built-in redactor cards>": 13,
        "<built-in redactor ssns>": 9,
        "<built-in redactor ips>": 0,  # its IPv6 part needs none
        "<built-in redactor ipv6>": 0,
        "<built-in redactor ipv4>": 4,
        repr(detectors("US")[-1]): 7,  # phones
    }


def test_a_secret_hint_is_tested_after_a_character_of_it() -> None:
    # Testing that character first is then only a shortcut: text without it lacks the hint.
    assert all(rare in hint for rare, hint in _ALL_HINTS)


def zoned_detectors() -> list[CandidateRedactor | SubstitutingRedactor]:
    return [
        detector
        for detector in detectors("US")
        if isinstance(detector, CandidateRedactor | SubstitutingRedactor)
        and detector._zones is not None
    ]


def searching_everywhere(
    detector: CandidateRedactor | SubstitutingRedactor,
) -> CandidateRedactor | SubstitutingRedactor:
    """``detector`` without its zones: it searches the whole text."""
    everywhere = copy.copy(detector)
    everywhere._zones = None
    return everywhere


def test_cards_ibans_and_ipv4_addresses_are_searched_in_zones() -> None:
    assert {repr(detector) for detector in zoned_detectors()} == {
        "<built-in redactor cards>",
        "<built-in redactor ibans>",
        "<built-in redactor ipv4>",
    }


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS.filter(str.isascii))
@example(text=BENCHMARK_TEXT * 3)
@example(text="IBAN GB82 WEST 1234 5698 7654 32 THEN GB82 WEST 1234 5698 7654 32")
@example(text="x4111 1111 1111 1111 4111-1111-1111-1111")
@example(text="call +1 415 555 2671, card 12 4111 1111 1111 1111, 4111  1111 1111 1111 1111")
@example(text="4111-1111-1111-1111-4111 1111 1111 1111 12 378282246310005 37 8282 2463 1000 5")
@example(text="v1.2.3.4 10.0.12.7.5 192.168.1.1 255.255.255.255 1.2.3.4")
def test_searching_in_zones_finds_what_searching_everywhere_finds(text: str) -> None:
    # Zones are taken in ASCII text only.
    for detector in zoned_detectors():
        assert detector.detect(text) == searching_everywhere(detector).detect(text), detector


# Digit groups with the separators that decide what a card is: one space or dash joins groups,
# two end a run, other characters end it too.
DIGIT_GROUPS = st.lists(
    st.tuples(
        st.text(alphabet="0123456789", min_size=1, max_size=6),
        st.sampled_from(["", " ", "-", "  ", " -", "--", ".", "+", "x", "/"]),
    ),
    max_size=10,
).map(lambda groups: "".join(digits + separator for digits, separator in groups))


@settings(max_examples=3000, deadline=None)
@given(text=DIGIT_GROUPS)
@example(text="+1 415 555 2671 4111 1111 1111 1111")
@example(text="12 4111-1111-1111-1111 3")
def test_cards_in_zones_are_the_cards_found_everywhere(text: str) -> None:
    assert redact_cards.detect(text) == searching_everywhere(redact_cards).detect(text)


# IBANs and near misses: valid ones and made-up codes, grouped by one or more spaces or dashes
# or not at all, after prose whose capitals and digits are spaced like an IBAN's start
# ("SSN 123-45-6789", "AB 12").
IBAN_LIKE = st.lists(
    st.one_of(
        st.sampled_from(
            ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "NL91ABNA0417164300"]
        ),
        st.text(alphabet="ABGSNW0123456789", min_size=2, max_size=8),
        st.sampled_from(["SSN ", "AB 12", "IBAN ", "gb82", "x", "."]),
    ).flatmap(
        lambda part: st.sampled_from([" ", "", "-", "  ", " - "]).map(
            lambda separator: part.replace(" ", separator) + " "
        )
    ),
    max_size=6,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=IBAN_LIKE)
@example(text="SSN 123-45-6789 IBAN GB82 WEST 1234 5698 7654 32")
@example(text="GB82-WEST-1234-5698-7654-32 GB82  WEST 1234 5698 7654 32")
def test_ibans_in_zones_are_the_ibans_found_everywhere(text: str) -> None:
    assert redact_ibans.detect(text) == searching_everywhere(redact_ibans).detect(text)


def test_zones_are_taken_in_ascii_text() -> None:
    zones = Zones(b"0.0", b"[0.]*", before=2)
    # Spaces are "0"s in the shape too.
    assert zones.of("host 10.0.12.7 and 10.0.12.8.") == [(4, 17), (18, 31)]
    assert zones.of("host 10.0.12.7 \u00e9") is None
