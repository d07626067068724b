"""US social security numbers, minus the ranges the SSA never issues."""

from __future__ import annotations

import re

from closedloop.privacy._redaction._candidates import BuiltInRedactor
from closedloop.privacy._redaction.base import replace_spans

# Anchored on the first dash, a literal: "123-45-6789" is found by looking back 3 digits.
# The pattern itself turns down what the SSA never issues (area 000, 666 or 9xx, group 00,
# serial 0000), so every match is a number to replace, with no Python call to validate it.
_SSN = re.compile(
    r"-(?<=\d{3}-)(?<![\w-]\d{3}-)(?<!000-)(?<!666-)(?<!9\d\d-)"
    r"(?!00)\d\d-(?!0000)\d{4}(?!\w|-\d)",
    re.ASCII,
)
_AREA = 3  # the digits before the match's first character, its dash
_WRITTEN = b"0" * 11  # "123-45-6789" in a text's shape
_MIN_DIGITS = 9


def _may_hold_ssn(text: str, digits: int, others: int, shape: bytes) -> bool:
    return digits >= _MIN_DIGITS and _WRITTEN in shape


class SsnRedactor(BuiltInRedactor):
    """Replaces social security numbers with ``<SSN>``."""

    __slots__ = ()

    def detect(self, text: str) -> tuple[str, int]:
        spans = [(match.start() - _AREA, match.end()) for match in _SSN.finditer(text)]
        return replace_spans(text, spans, "<SSN>")


redact_ssns = SsnRedactor("ssns", _may_hold_ssn, min_digits=_MIN_DIGITS)
