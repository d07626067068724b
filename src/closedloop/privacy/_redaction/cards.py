"""Payment card numbers, confirmed by their Luhn check digit."""

from __future__ import annotations

import re
from itertools import accumulate

from closedloop.privacy._redaction._candidates import CandidateRedactor
from closedloop.privacy._redaction._zones import SEPARATED_SHAPE, Zones
from closedloop.privacy._redaction.base import TextRange

# Groups of 3+ digits joined by one space or dash: "4111 1111 1111 1111", "3782-822463-10005".
# Shorter groups end the run, so an expiry month after the number ("... 1111 12/26") stays out,
# and so does a group that continues as another number ("1111 123-45-6789", "1111 10.0.0.1").
# The short lookahead (a first group has three digits) turns down "1 2 3 ..." before the long one.
_CARD_RUN = re.compile(
    r"\d(?<![\w+].)(?<!\d[-.].)(?=\d\d)(?=(?:[ -]?\d){12})\d{2,}(?:[ -]\d{3,})*(?!\w|[-.]\d)",
    re.ASCII,
)
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit sum of 2 * d
_MIN_DIGITS, _MAX_DIGITS = 13, 19
_RUN_SHAPE = b"0" * _MIN_DIGITS  # a run of digits, spaces and dashes in a text's shape


def _luhn_digits(digits: str) -> tuple[bytes, bytes]:
    """The digits as they are and doubled (digit sum of 2 * d), as ASCII codes."""
    return digits.encode("ascii"), digits.translate(_LUHN_DOUBLED).encode("ascii")


def _luhn_valid(plain: bytes, doubled: bytes, begin: int, stop: int) -> bool:
    """Whether ``digits[begin:stop]`` passes the Luhn check: digits at an even distance from
    the last one count as they are, the others doubled (slices and sums stay in C)."""
    kept = sum(plain[begin + (stop - 1 - begin) % 2 : stop : 2])
    twice = sum(doubled[begin + (stop - begin) % 2 : stop : 2])
    return (kept + twice - ord("0") * (stop - begin)) % 10 == 0


def _card_spans(match: re.Match[str]) -> list[TextRange]:
    run = match.group()
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < _MIN_DIGITS:
        return []
    if len(digits) <= _MAX_DIGITS:
        return [match.span()] if _luhn_valid(*_luhn_digits(digits), 0, len(digits)) else []
    return _cards_among_numbers(run, digits, match.start())


def _cards_among_numbers(run: str, digits: str, base: int) -> list[TextRange]:
    """A run longer than any card: a card next to other numbers.

    Tries each run of whole groups with a card's length and returns the union of the valid
    ones, so no card digit can leak. A card spans at most six groups (of three digits or
    more), so this is linear in the run's length.
    """
    sizes = [len(group) for group in run.replace("-", " ").split(" ")]  # one separator each
    ends = list(accumulate(sizes))  # where each group ends in ``digits``
    plain, doubled = _luhn_digits(digits)
    spans: list[TextRange] = []
    for first, size in enumerate(sizes):
        begin = ends[first] - size
        for last in range(first, len(sizes)):
            stop = ends[last]
            if stop - begin > _MAX_DIGITS:
                break
            if stop - begin >= _MIN_DIGITS and _luhn_valid(plain, doubled, begin, stop):
                # In ``run`` a group is preceded by the digits and separators before it.
                start, end = base + begin + first, base + stop + last
                if spans and start < spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], end))
                else:
                    spans.append((start, end))
    return spans


redact_cards = CandidateRedactor(
    "cards",
    _CARD_RUN,
    "<CARD>",
    _card_spans,
    precheck=lambda text, digits, others, shape: digits >= _MIN_DIGITS and _RUN_SHAPE in shape,
    min_digits=_MIN_DIGITS,
    # A card starts with 13 digits, the first three in a row, each group after a single
    # space or dash: "000" then ten "0"s, each maybe after a "-", in a shape where spaces
    # are "-"s. The zone then takes the rest of the run (one character-class loop, cheap on
    # long runs).
    zones=Zones(b"000", b"(?:-?0){10}[0-]*", shape=SEPARATED_SHAPE),
)
