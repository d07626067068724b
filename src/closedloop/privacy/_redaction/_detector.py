"""Built-in redactors in two parts: a pre-check on cheap facts, then the detection proper.

Most chat text holds no entity at all, and even a detector that finds nothing costs a scan of
the text. Every entity needs something cheap to test for: an "@", a number of digits, a
token prefix. So each built-in's :attr:`Detector.precheck` answers from a substring test and
the text's digit counts and shape, which the pipeline takes once per text and shares between
detectors; only then does it run :meth:`Detector.detect`. A pre-check may let through text
without an entity, never reject text with one: ``detect`` of text it rejects changes nothing.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Callable

from closedloop.privacy._redaction.base import ascii_digit_count

# A pre-check's arguments: the text, its ASCII digits, its non-ASCII characters (any of
# which may be a Unicode digit: libphonenumber reads full-width and Arabic-Indic ones), and
# its shape.
Precheck = Callable[[str, int, int, bytes], bool]
# A text's shape is its ASCII characters with digits, spaces and dashes as "0" and capitals as
# "A": a card needs 13 such "0"s in a row and an IBAN starts "AA00", which a substring search
# finds at memchr speed, where a regex starting with a digit costs about 5 µs per KB. Dropping
# the other characters can only join runs, never split one, so a pre-check stays sound.
SHAPE = bytes.maketrans(b"0123456789 -" + string.ascii_uppercase.encode(), b"0" * 12 + b"A" * 26)
# The fewest digits of any entity whose pre-check reads the shape (an SSN's): with fewer, it
# is not taken.
SHAPED_DIGITS = 9
Counts = tuple[int, int, bytes]
NO_COUNTS: Counts = (0, 0, b"")


def counts_of(text: str) -> Counts:
    """The ASCII digits, the non-ASCII characters and the shape of ``text`` (empty with fewer
    than ``SHAPED_DIGITS`` digits), in C passes."""
    ascii_text = text.encode("ascii", "ignore")
    digits = ascii_digit_count(ascii_text)
    shape = shape_of(ascii_text) if digits >= SHAPED_DIGITS else b""
    return digits, len(text) - len(ascii_text), shape


def shape_of(ascii_text: bytes) -> bytes:
    """The shape of a text's ASCII characters (see ``SHAPE``)."""
    return ascii_text.translate(SHAPE)


class Detector(ABC):
    """A built-in redactor: a pre-check, then the detection it guards.

    Called as a redactor it runs both; the pipeline runs them itself, sharing the counts
    between all detectors.
    """

    __slots__ = ("min_digits", "precheck", "reads_counts")

    def __init__(
        self, precheck: Precheck, *, reads_counts: bool = True, min_digits: int = 0
    ) -> None:
        # False only if ``detect`` would leave the text unchanged.
        self.precheck = precheck
        # False if the pre-check reads the text alone: then it gets ``NO_COUNTS``, and the
        # pipeline need not count a text that only such pre-checks look at.
        self.reads_counts = reads_counts
        # The pre-check rejects every text with fewer digits (ASCII digits and non-ASCII
        # characters together, any of which may be a digit); 0: text without any may pass.
        # The pipeline does not even ask it about such text.
        self.min_digits = min_digits

    @abstractmethod
    def detect(self, text: str) -> tuple[str, int]:
        """Replace the entities in ``text``, with no pre-check."""

    def __call__(self, text: str) -> tuple[str, int]:
        if not self.precheck(text, *(counts_of(text) if self.reads_counts else NO_COUNTS)):
            return text, 0
        return self.detect(text)
