"""Where in an ASCII text a detector's candidates can be, found at memchr speed.

A regex that starts with a character class (a digit, a capital) reads every character of the
text, about 5 µs per KB, even where nothing comes close to a candidate. A text's shape (see
:mod:`._detector`) turns the question into a search for a literal: an IPv4 address holds
"0.0", and in a shape where spaces stay apart from digits, a card starts "000" and an IBAN
"AA00". A zone is a match of such a pattern over the shape, widened so that it holds every
candidate that meets it; only the zones are then searched with the detector's own pattern.
"""

from __future__ import annotations

import re
import string

from closedloop.privacy._redaction._detector import SHAPE
from closedloop.privacy._redaction.base import TextRange

# How far past a zone the candidates' lookaheads read.
_LOOKAHEAD = 2
# A shape in which spaces stay apart from digits (as "-", like dashes): in the text's shape a
# phone number such as "+1 415 555 2671" is 14 "0"s in a row, like a card, though it has 11
# digits, and "SSN 123" holds "AA00", like the start of an IBAN.
SEPARATED_SHAPE = bytes.maketrans(
    b"0123456789 " + string.ascii_uppercase.encode(), b"0" * 10 + b"-" + b"A" * 26
)


class Zones:
    """Where a pattern over a text's shape matches: ``needle`` (a literal, which the search
    skips to) and then ``rest``, each match widened by ``before`` characters (a candidate may
    start that far before it) and by the lookahead after it.

    Sound if every candidate lies inside one widened match; a search with ``pos`` still sees
    the text before it, so lookbehinds read what they would in the whole text. Even where
    zones are dense (a candidate every 150 characters) the search costs no more than reading
    the whole text; where they are sparse, as in what is left after redaction, it costs next
    to nothing.
    """

    __slots__ = ("_before", "_pattern", "_shape")

    def __init__(
        self, needle: bytes, rest: bytes = b"", *, before: int = 0, shape: bytes = SHAPE
    ) -> None:
        self._pattern = re.compile(re.escape(needle) + rest)
        self._before = before
        # The text's shape, or a table of the detector's own where that says too little.
        self._shape = shape

    def of(self, text: str) -> list[TextRange] | None:
        """The zones of ``text``, or None if it is not ASCII (the shape drops the other
        characters, so its positions would not be the text's)."""
        if not text.isascii():
            return None
        before = self._before
        shape = text.encode("ascii").translate(self._shape)
        # A search's end may lie past the text's.
        return [
            (max(0, zone.start() - before), zone.end() + _LOOKAHEAD)
            for zone in self._pattern.finditer(shape)
        ]
