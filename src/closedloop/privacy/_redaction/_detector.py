"""Built-in redactors in two parts: a pre-check on cheap facts, then the detection proper.

Most chat text holds no entity at all, and even a detector that finds nothing costs a scan of
the text. Every entity needs something cheap to test for: an "@", a number of digits, a
token prefix. So each built-in's :attr:`Detector.precheck` answers from a substring test and
the text's digit counts, which the pipeline takes once per text and shares between
detectors; only then does it run :meth:`Detector.detect`. A pre-check may let through text
without an entity, never reject text with one: ``detect`` of text it rejects changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from closedloop.privacy._redaction.base import ascii_digit_count

# A pre-check's arguments: the text, its ASCII digits, and its non-ASCII characters, any of
# which may be a Unicode digit (libphonenumber reads full-width and Arabic-Indic ones).
Precheck = Callable[[str, int, int], bool]


def counts_of(text: str) -> tuple[int, int]:
    """The ASCII digits and the non-ASCII characters of ``text``, in two C passes."""
    ascii_text = text.encode("ascii", "ignore")
    return ascii_digit_count(ascii_text), len(text) - len(ascii_text)


class Detector(ABC):
    """A built-in redactor: a pre-check, then the detection it guards.

    Called as a redactor it runs both; the pipeline runs them itself, sharing the counts
    between all detectors.
    """

    __slots__ = ("precheck",)

    def __init__(self, precheck: Precheck) -> None:
        # False only if ``detect`` would leave the text unchanged.
        self.precheck = precheck

    @abstractmethod
    def detect(self, text: str) -> tuple[str, int]:
        """Replace the entities in ``text``, with no pre-check."""

    def __call__(self, text: str) -> tuple[str, int]:
        if not self.precheck(text, *counts_of(text)):
            return text, 0
        return self.detect(text)
