"""US social security numbers, minus the ranges the SSA never issues."""

from __future__ import annotations

import re

from closedloop.privacy._redaction._candidates import CandidateRedactor
from closedloop.privacy._redaction.base import TextRange

# Anchored on the first dash, a literal: "123-45-6789" is found by looking back 3 digits.
_SSN = re.compile(r"-(?<=\d{3}-)(?<![\w-]\d{3}-)\d\d-\d{4}(?!\w|-\d)", re.ASCII)


def _ssn_spans(match: re.Match[str]) -> tuple[TextRange, ...]:
    start, end = match.start() - 3, match.end()
    area, group, serial = match.string[start:end].split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return ()
    return ((start, end),)


_WRITTEN = b"0" * 11  # "123-45-6789" in a text's shape
_MIN_DIGITS = 9


def _may_hold_ssn(text: str, digits: int, others: int, shape: bytes) -> bool:
    return digits >= _MIN_DIGITS and _WRITTEN in shape


redact_ssns = CandidateRedactor(
    "ssns", _SSN, "<SSN>", _ssn_spans, precheck=_may_hold_ssn, min_digits=_MIN_DIGITS
)
