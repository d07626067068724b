"""Where a phone number can be: short windows of text, found in one linear scan.

libphonenumber's matcher, run over a whole text, tries every way of splitting each long
candidate and costs about 13 µs per character of numeric data. Here the text is cut first. A
*run* is what the matcher's candidate pattern would take, without its limit on length: digit
groups joined by at most four phone punctuation characters, with up to two leading brackets or
plus signs and a trailing extension. A run of at most ``MAX_DIGITS`` digits is one window, so
on ordinary text the matcher sees exactly the candidates it would have found itself. A longer
run is data (a list of ids, space-separated numbers), not one number: it is split the ways
libphonenumber splits a long candidate (at slashes, before brackets, at dashes, at dots, at
spaces) and before a plus, and the parts of at most ``MAX_DIGITS`` digits are windows, in
which a number must be the whole part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from closedloop.privacy._redaction.base import ascii_digit_count

# libphonenumber's phone punctuation (its _VALID_PUNCTUATION), leading characters and
# extension syntax (_EXTN_PATTERNS_FOR_MATCHING); a test checks these against the library.
PUNCTUATION = (
    "\\-x\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \xa0\xad\u200b\u2060\u3000()"
    "\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e"
)
LEADS = "(\\[\uff08\uff3b+\uff0b"
# The extension alternatives, sharing their leading separators, which are at most eight here
# (any number there) so that a run stays short; the lookahead rejects the usual case (no
# extension) after the separators.
EXTENSION = (
    "(?=;|[ \xa0\\t,]{0,8}[ex\uff45\uff58\u0434a#\uff03~\uff5ei\uff49]|[- ]{1,8}\\d)"
    "(?:;ext=\\d{1,20}"
    "|[ \xa0\\t,]{0,8}(?:(?:e?xt(?:ensi(?:o\u0301?|\xf3))?n?|\uff45?\uff58\uff54\uff4e?"
    "|\u0434\u043e\u0431|anexo)[:\\.\uff0e]?[ \xa0\\t,-]{0,8}\\d{1,20}#?"
    "|(?:[x\uff58#\uff03~\uff5e]|int|\uff49\uff4e\uff54)[:\\.\uff0e]?[ \xa0\\t,-]{0,8}"
    "\\d{1,9}#?)"
    "|[- ]{1,8}\\d{1,6}#)"
)
# A run either has seven digits before any extension (the hint every number in national or
# international format meets), or ends with an extension: libphonenumber takes "6#88866" as
# a number with an extension, so "201.555.0123" after it starts a new candidate. Like its
# pattern, a run takes its digit groups greedily (here atomically, so a failed extension does
# not retry every shorter run) and starts at a lead character or where a digit run starts.
# Starting with one class of lead characters and digits lets ``re`` skip to those (an
# alternation of classes would make it try every position); the lookbehinds then tell a lead
# from a digit. The lookahead after a lead keeps a text of brackets from costing the lead's
# combinations.
# Case matters only in an extension's words and in the punctuation's "x": ``re`` skips to a
# run's first character faster when the pattern does not ignore case.
_PUNCT = PUNCTUATION.replace("x", "xX")
_EXT = f"(?i:{EXTENSION})"
_START = (
    f"[{LEADS}\\d](?:(?<=[{LEADS}])(?=[{LEADS}{_PUNCT}]{{0,9}}\\d)[{_PUNCT}]{{0,4}}"
    f"(?:[{LEADS}][{_PUNCT}]{{0,4}})?\\d|(?<=\\d)(?<!\\d\\d))"
)
_GROUPS = f"\\d*(?:[{_PUNCT}]{{1,4}}\\d+)*"
_RUN_PATTERN = (
    f"{_START}(?:(?=(?:[{_PUNCT}]{{0,4}}\\d){{6}})(?>{_GROUPS})"
    f"|(?>{_GROUPS})(?={_EXT}))(?P<extension>{_EXT})?"
)
_RUN = re.compile(_RUN_PATTERN)
# The same runs in ASCII text, where ``re`` skips to a lead or digit about twice as fast
# (a range of digits is cheaper to test than the Unicode digit category).
_ASCII_RUN = re.compile(_RUN_PATTERN, re.ASCII)
# An extension can end inside a digit group ("#201555012|3123-45-6789"); libphonenumber's
# next candidate starts right there, which no run starting at a digit group does.
_CONTINUATION = re.compile(f"(?>\\d{_GROUPS})(?P<extension>{_EXT})?")
MIN_DIGITS = 7
MAX_DIGITS = 24  # the longest number (20 digits with its country code) and a prefix
# Longer than any part of a long run (a lead, MAX_DIGITS digits with up to four punctuation
# characters between them, an extension).
_EDGE = 256


def _digits_between(other: str) -> str:
    """A lookahead for 7 to ``MAX_DIGITS`` digits, with ``other`` characters between them."""
    return f"(?=(?:{other}*\\d){{{MIN_DIGITS}}})(?!(?:{other}*\\d){{{MAX_DIGITS + 1}}})"


def _parts_between(separators: str) -> re.Pattern[str]:
    """Parts between characters of the class ``separators``."""
    digits = _digits_between(f"[^{separators}\\d]")
    return re.compile(f"(?<![^{separators}]){digits}[^{separators}]+")


def _parts_from(openers: str) -> re.Pattern[str]:
    """Parts from one of the ``openers`` (or the start) to the next."""
    digits = _digits_between(f"[^{openers}\\d]")
    return re.compile(f"(?:[{openers}]|\\A){digits}[^{openers}]*")


class _Split(NamedTuple):
    """One way to cut a long run, tried if the run holds one of ``needles``.

    ``marks``, if any, are replaced by NUL (one character for one) before ``parts`` runs.
    """

    needles: tuple[str, ...]
    parts: re.Pattern[str]
    marks: re.Pattern[str] | None = None


# The ways libphonenumber splits a long candidate (its _INNER_MATCHES), plus before a "+",
# each applied to the whole run: "A / B", "(201) 555-0123 (202)", "+44 ... +44 ...",
# "A - B" (a dash next to a space, or a wide dash), "A. B", and space-separated tokens.
# Only parts with 7 to ``MAX_DIGITS`` digits are windows.
_SPLITS = (
    _Split(("/",), _parts_between("/")),
    _Split(("(",), _parts_from("(")),
    _Split(("+", "\uff0b"), _parts_from("+\uff0b")),
    _Split(
        (" -", "- ", *"\u2012\u2013\u2014\u2015\uff0d"),
        _parts_between("\x00"),
        re.compile("(?<=\\s)-|-(?=\\s)|[\u2012-\u2015\uff0d]"),
    ),
    _Split((".",), _parts_between(".")),
    _Split((" ", "\xa0", "\u3000", "\t"), _parts_between("\\s")),
)
_NON_DIGITS = re.compile(r"\D+")


# Text that may hold phone numbers: where it starts and ends, and whether it is a part of a
# long run rather than a whole run. In a part, only a number that is all of it counts: the
# parts are cut to be numbers. Plain tuples, as there is one for nearly every number.
Window = tuple[int, int, bool]


def context_after(is_part: bool) -> int:
    """Characters a window is read with after its end: three after a run (libphonenumber
    looks for ":MM" after a time stamp), one after a part, its separator, so that the
    matcher cannot join it to the next part."""
    return 1 if is_part else 3


def digit_count(text: str) -> int:
    """Digits as libphonenumber counts them: any Unicode decimal digit."""
    if text.isascii():
        return ascii_digit_count(text.encode("ascii"))
    return len(_NON_DIGITS.sub("", text))


def run_pattern(text: str) -> re.Pattern[str]:
    """The pattern that finds the runs of ``text``: the faster one if it is ASCII."""
    return _ASCII_RUN if text.isascii() else _RUN


def next_run(text: str, position: int, end: int, runs: re.Pattern[str]) -> re.Match[str] | None:
    """The first run of ``text`` from ``position`` that ends by ``end`` (which no run may
    cross), found with ``runs``, the text's :func:`run_pattern`."""
    if position and text[position - 1 : position + 1].isdecimal():
        return _CONTINUATION.match(text, position, end)  # after an extension
    return runs.search(text, position, end)


def phone_windows(run: re.Match[str], *, edges_only: bool = False) -> list[Window]:
    """The windows of one run; its extension's digits do not count towards its length.

    With ``edges_only``, a long run yields only the parts near its ends: when a replacement
    has just cut a run, only those can differ from the parts already looked at.
    """
    start, end = run.span()
    number_end = run.start("extension")  # -1 if the run has no extension
    digits = digit_count(run.string[start : end if number_end < 0 else number_end])
    if digits < MIN_DIGITS:
        return []
    if digits <= MAX_DIGITS:
        return [(start, end, False)]
    text = run.group()
    windows: list[Window] = []
    for split in _SPLITS:
        if any(needle in text for needle in split.needles):
            marked = text if split.marks is None else split.marks.sub("\x00", text)
            windows += (
                (start + part.start(), start + part.end(), True)
                for part in _parts(split.parts, marked, edges_only)
            )
    return windows


def _parts(parts: re.Pattern[str], run: str, edges_only: bool) -> Iterator[re.Match[str]]:
    if not edges_only or len(run) <= 2 * _EDGE:
        yield from parts.finditer(run)
        return
    for part in parts.finditer(run):
        if part.start() > _EDGE:
            break
        yield part
    yield from parts.finditer(run, len(run) - _EDGE)
