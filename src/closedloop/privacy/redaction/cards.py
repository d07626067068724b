"""Payment card numbers, confirmed by their Luhn check digit."""

from __future__ import annotations

import re

from closedloop.privacy.redaction._candidates import CandidateRedactor
from closedloop.privacy.redaction.base import Span, digit_count

# Groups of 3+ digits joined by one space or dash: "4111 1111 1111 1111", "3782-822463-10005".
# Shorter groups end the run, so an expiry month after the number ("... 1111 12/26") stays out,
# and so does a group that continues as another number ("1111 123-45-6789", "1111 10.0.0.1").
_CARD_RUN = re.compile(
    r"\d(?<![\w+].)(?<!\d[-.].)(?=(?:[ -]?\d){12})\d{2,}(?:[ -]\d{3,})*(?!\w|[-.]\d)",
    re.ASCII,
)
_DIGIT_GROUP = re.compile(r"\d+", re.ASCII)
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit sum of 2 * d
_MIN_DIGITS, _MAX_DIGITS = 13, 19


def _luhn_valid(digits: str) -> bool:
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(map(int, digits[-1::-2])) + sum(map(int, doubled))) % 10 == 0


def _card_spans(match: re.Match[str]) -> list[Span]:
    run = match.group()
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < _MIN_DIGITS:
        return []
    if len(digits) <= _MAX_DIGITS:
        return [match.span()] if _luhn_valid(digits) else []
    return _cards_among_numbers(run, digits, match.start())


def _cards_among_numbers(run: str, digits: str, base: int) -> list[Span]:
    """A run longer than any card: a card next to other numbers.

    Tries each run of whole groups with a card's length and returns the union of the valid
    ones, so no card digit can leak.
    """
    groups = [(group.start(), group.end()) for group in _DIGIT_GROUP.finditer(run)]
    spans: list[Span] = []
    offset = 0  # position in ``digits`` of the first group's first digit
    for first, (start, first_end) in enumerate(groups):
        length = 0
        for group_start, end in groups[first:]:
            length += end - group_start
            if length > _MAX_DIGITS:
                break
            if length >= _MIN_DIGITS and _luhn_valid(digits[offset : offset + length]):
                if spans and base + start < spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], base + end))
                else:
                    spans.append((base + start, base + end))
        offset += first_end - start
    return spans


redact_cards = CandidateRedactor(
    "cards",
    _CARD_RUN,
    "<CARD>",
    _card_spans,
    precheck=lambda text: digit_count(text) >= _MIN_DIGITS,
)
