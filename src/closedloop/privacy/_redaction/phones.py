"""Phone numbers, as libphonenumber reads them, looked for only in short windows of the text.

A number is redacted if libphonenumber deems it valid and it is written bare or grouped as
the region groups numbers, or if it is possible and written in a phone format (see
:mod:`._formatted_numbers`): "(761) 217-6614" is someone's number even though area code 761
is not assigned yet, while "2024-118822" in "ORD-2024-118822" is valid but no phone number.

libphonenumber costs about 30 µs per candidate it parses, so it is handed only the windows of
:mod:`._phone_windows` (bounded in size, found in one linear scan) that the sound checks of
:mod:`._national_numbers` and :mod:`._formatted_numbers` let through, and each window's
verdict is kept for the rest of the call: repeated data costs one parse. Verdicts are not
kept between calls, as they would hold the numbers of past requests in memory. The commonest
run, a "+" number set apart from its neighbours, is judged from the run alone, with no window.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable

import phonenumbers

from closedloop.privacy._redaction._detector import Detector
from closedloop.privacy._redaction._formatted_numbers import (
    APART_AFTER,
    APART_BEFORE_PLUS,
    FormattedNumbers,
    joined_to_its_surroundings,
)
from closedloop.privacy._redaction._national_numbers import NationalNumbers
from closedloop.privacy._redaction._phone_windows import (
    MIN_DIGITS,
    Window,
    context_after,
    digit_count,
    next_run,
    phone_windows,
    run_pattern,
)
from closedloop.privacy._redaction._possible_numbers import (
    MAX_TRIES,
    PLUS_NUMBER,
    PLUS_NUMBER_AFTER,
    lone_plus_number,
    plus_number_digits,
    possible_numbers,
    surely_possible,
)
from closedloop.privacy._redaction.base import TextRange, replace_spans

# Seven digits with at most a few separators between neighbours: every valid number in
# international or national format has that, while prose with a few numbers rarely does.
# In non-ASCII text Unicode digits count too: libphonenumber reads full-width and
# Arabic-Indic digits.
_PHONE_HINT = re.compile(r"\d(?:\D{0,4}\d){6}")
_ASCII_PHONE_HINT = re.compile(_PHONE_HINT.pattern, re.ASCII)
_PLACEHOLDER = "<PHONE>"
# A "+" number whose neighbours ``joined_to_its_surroundings`` accepts at a glance: a
# character before it that sets it apart (no bracket: a run that starts at the "+" has none
# before it), and one after it that does, or the end.
_APART_PLUS_NUMBER = re.compile(
    f"(?<=[{re.escape(APART_BEFORE_PLUS)}]){PLUS_NUMBER}(?=[{re.escape(APART_AFTER)}]|\\Z)"
)
_AFTER_PLUS_NUMBER = re.compile(PLUS_NUMBER_AFTER)
# Replacing a number changes the run it was in (now two runs, maybe short ones), so the
# redactor looks at those runs and their neighbours again, until its output is a fixpoint.
_DIGIT = re.compile(r"\d")
_GROUPED = phonenumbers.Leniency.STRICT_GROUPING

# A window's verdict depends on its text with context, where its core starts and ends in it,
# whether it is a part, and whether a digit precedes it.
Verdicts = dict[tuple[str, int, int, bool, bool], tuple[TextRange, ...]]


def _may_hold_phone(text: str, digits: int, others: int, shape: bytes) -> bool:
    # Any non-ASCII character might be a digit, so count them all before the Unicode regex.
    if digits + others < MIN_DIGITS:
        return False
    hint = _PHONE_HINT if others else _ASCII_PHONE_HINT
    return hint.search(text) is not None


class PhoneRedactor(Detector):
    """Replaces phone numbers with ``<PHONE>``: valid ones, bare or grouped as the region
    groups them, and possible ones in a phone format.

    Numbers written without a ``+`` country code are read as numbers of ``region``.
    Run it after the card, IBAN, IP and SSN redactors, whose digits it could otherwise read
    as phone numbers. Running it on its own output changes nothing.
    """

    __slots__ = ("_formatted", "_national", "_region")
    reaches_fixpoint = True

    def __init__(self, region: str = "US") -> None:
        super().__init__(_may_hold_phone, min_digits=MIN_DIGITS)
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"phone_region {region!r} is not a region phonenumbers knows; "
                "use an ISO 3166 code such as 'US', 'GB' or 'DE'"
            )
        self._region = region
        self._national = NationalNumbers(region)
        self._formatted = FormattedNumbers(region)

    @property
    def region(self) -> str:
        return self._region

    def detect(self, text: str) -> tuple[str, int]:
        verdicts: Verdicts = {}
        total = 0
        regions = [(0, len(text))]
        runs: list[TextRange] = []  # every run of the text, as of the last scan
        while True:
            numbers, changed, runs = self._scan(text, regions, runs, verdicts)
            if not numbers:  # each round replaces digits, so this ends
                return text, total
            text, count = replace_spans(text, numbers, _PLACEHOLDER)
            total += count
            if changed == numbers:  # each number was a run of its own: only placeholders left
                return text, total
            regions = _after_replacing(changed, numbers)
            # A window needs MIN_DIGITS digits of its region, which replacing usually leaves
            # none with: then the next scan would find nothing.
            if all(digit_count(text[start:end]) < MIN_DIGITS for start, end in regions):
                return text, total
            runs = _moved(runs, numbers)

    def _scan(
        self,
        text: str,
        regions: list[TextRange],
        runs: list[TextRange],
        verdicts: Verdicts,
    ) -> tuple[list[TextRange], list[TextRange], list[TextRange]]:
        """The numbers in ``regions``, the regions that replacing them changes, and every run
        of ``text``: those of ``regions`` found now, the others as ``runs`` knew them.

        Regions after the first scan of the whole text are runs just cut by replacements, or
        their neighbours. A neighbour may lie outside the regions scanned ("A ext. 42-B":
        replacing B changes what A's window reads after it), hence the runs kept. A run
        that libphonenumber reads on past its end (see :meth:`_read_on`) is kept as one run
        with the run it reads into.
        """
        found: list[TextRange] = []
        hit: list[int] = []  # where in ``scanned`` the runs holding numbers are
        scanned: list[TextRange] = []
        edges_only = bool(runs)
        pattern = run_pattern(text)
        for start, end in regions:
            position = start
            while (run := next_run(text, position, end, pattern)) is not None:
                run_start = run.start()
                hit_before = len(found)
                if self._is_apart_plus_number(text, run):
                    found.append((run_start, run.end()))
                else:
                    windows = phone_windows(run, edges_only=edges_only)
                    for window in windows:
                        found += self._numbers(text, window, verdicts)
                    if _ends_inside(run, windows, found, hit_before):
                        run = self._read_on(
                            text,
                            run,
                            found,
                            hit_before,
                            end=end,
                            pattern=pattern,
                            verdicts=verdicts,
                        )
                if len(found) > hit_before:
                    hit.append(len(scanned))
                position = run.end()
                scanned.append((run_start, position))
        outside = _outside(runs, regions)
        if not outside:  # as in the first scan: the runs scanned are all there are, in order
            return _union(found), [_neighbourhood(scanned, index) for index in hit], scanned
        every = sorted(outside + scanned)
        changed = [_neighbourhood(every, bisect_left(every, scanned[index])) for index in hit]
        return _union(found), changed, every

    def _read_on(
        self,
        text: str,
        run: re.Match[str],
        found: list[TextRange],
        first: int,
        *,
        end: int,
        pattern: re.Pattern[str],
        verdicts: Verdicts,
    ) -> re.Match[str]:
        """The last run that ``run``, whose numbers ``found[first:]`` end inside it (see
        :func:`_ends_inside`), is read on into, with the numbers read there added to
        ``found``; ``run`` itself if none is.

        libphonenumber goes on right after a number it found inside a candidate, so what
        follows the number is read again and may be read past the candidate: in
        "30 201.555.0123 ext. 45#" followed by "2015550123" the candidate is no number,
        201.555.0123 is found inside it, and the next candidate is "45#201555012" (45 with an
        extension). The window of ``run`` saw that candidate cut short, so what it found
        there is dropped, and the candidate is read as a run of its own.
        """
        while True:
            for index in range(first, len(found)):
                after = next_run(text, found[index][1], end, pattern)
                if after is not None and after.start() < run.end() < after.end():
                    break
            else:
                return run
            del found[index + 1 :]
            first = len(found)
            run = after
            windows = phone_windows(run)
            for window in windows:
                found += self._numbers(text, window, verdicts)
            if not _ends_inside(run, windows, found, first):
                return run

    def _numbers(self, text: str, window: Window, verdicts: Verdicts) -> list[TextRange]:
        start, end, is_part = window
        # One character of context before the window, as the matcher checks it for letters;
        # not a digit (a run can start right after an extension), which it would read on.
        before = 1 if start and not text[start - 1].isdecimal() else 0
        glued = bool(start) and not before  # right after a digit: no "+" there is a lead
        window_text = text[start - before : end + context_after(is_part)]
        key = (window_text, before, end - start, is_part, glued)
        spans = verdicts.get(key)
        if spans is None:
            spans = self._lone_plus_number(window_text, before, end - start, glued=glued)
            if spans is None:
                core = text[start:end]
                valid = self._national.may_hold_valid(core, whole=is_part)
                formatted = self._formatted.may_hold(core)
                spans = self._match(
                    window_text, before, end - start, valid=valid, formatted=formatted, glued=glued
                )
            verdicts[key] = spans
        return [(start + left, start + right) for left, right in spans]

    def _is_apart_plus_number(self, text: str, run: re.Match[str]) -> bool:
        """Whether ``run`` is a "+" number that :meth:`_lone_plus_number` finds in the run's
        window with its first checks alone: the commonest run, decided without building its
        window. (A run has the seven digits that check asks for, or an extension, which no
        such number has.)"""
        number = _APART_PLUS_NUMBER.match(text, run.start())
        end = run.end()
        return (
            number is not None
            and number.end() == end
            # What follows it in its window, as ``lone_plus_number`` takes it.
            and _AFTER_PLUS_NUMBER.fullmatch(text, end, end + context_after(False)) is not None
            and surely_possible(plus_number_digits(number.group()))
        )

    def _lone_plus_number(
        self, window: str, before: int, length: int, *, glued: bool
    ) -> tuple[TextRange, ...] | None:
        """:meth:`_match`'s verdict on the commonest window, a "+" number alone between
        non-digits ("+1 415 555 2671"), when that number is a formatted one; None when
        :meth:`_match` must decide. Such a number holds every digit of the window, so no
        valid number can add to it, and nothing of libphonenumber's needs to run."""
        shape = lone_plus_number(window)
        if shape is None:
            return None
        start, end = shape.span(1)
        digits = plus_number_digits(shape.group(1))
        # What FormattedNumbers.accepts checks of such a number: that it is possible, has
        # enough digits and stands apart from what surrounds it.
        if not (
            before <= start < before + length
            and len(digits) >= MIN_DIGITS
            and surely_possible(digits)
            and not joined_to_its_surroundings(window, start, end, "+", glued=glued)
        ):
            return None
        return ((start - before, end - before),)

    def _match(
        self, window: str, before: int, length: int, *, valid: bool, formatted: bool, glued: bool
    ) -> tuple[TextRange, ...]:
        """Numbers in ``window`` that start in its core, core-relative: the formatted possible
        ones if ``formatted``, the valid ones if ``valid`` (else there are none). ``glued``:
        ``window`` starts right after a digit that it leaves out.

        A valid number must be grouped as numbers are in the region, or not at all (leniency
        STRICT_GROUPING): "2024-118822" in an order number is valid, but no phone number.
        Once formatted numbers take every digit of the core, no valid one can add to them.
        """
        end = before + length
        found: list[TextRange] = []
        if formatted:
            possible = possible_numbers(window, self._region)
            found += _in_core(
                (
                    number
                    for number in possible
                    if self._formatted.accepts(window, number, glued=glued)
                ),
                before,
                end,
            )
        if valid and _has_digit_outside(window, before, end, found):
            grouped = phonenumbers.PhoneNumberMatcher(
                window, self._region, leniency=_GROUPED, max_tries=MAX_TRIES
            )
            found += _in_core(grouped, before, end)
        return tuple((start - before, stop - before) for start, stop in found)

    def __repr__(self) -> str:
        return f"PhoneRedactor({self._region!r})"


def _ends_inside(
    run: re.Match[str], windows: list[Window], found: list[TextRange], first: int
) -> bool:
    """Whether ``run`` is one whole window whose first number, ``found[first]`` if any, ends
    inside it: then libphonenumber reads on from that number (see ``_read_on``)."""
    return (
        len(found) > first
        and found[first][1] < run.end()
        and len(windows) == 1
        and not windows[0][2]
    )


def _in_core(
    numbers: Iterable[phonenumbers.PhoneNumberMatch], before: int, end: int
) -> list[TextRange]:
    """The spans of ``numbers`` that start in the core of a window, ``before`` to ``end``."""
    return [(number.start, number.end) for number in numbers if before <= number.start < end]


def _has_digit_outside(window: str, start: int, end: int, spans: list[TextRange]) -> bool:
    """Whether ``window[start:end]`` has a digit outside ``spans``."""
    for span_start, span_end in sorted(spans):
        if _DIGIT.search(window, start, max(start, span_start)):
            return True
        start = max(start, span_end)
    return _DIGIT.search(window, start, end) is not None


def _neighbourhood(runs: list[TextRange], index: int) -> TextRange:
    """The run at ``index`` with the runs whose verdicts depend on its characters: one that
    ends at most three characters before it (its context after reaches in) and one that
    continues it (its context before is this run's last character)."""
    start, end = runs[index]
    if index and start - runs[index - 1][1] <= 3:
        start = runs[index - 1][0]
    if index + 1 < len(runs) and runs[index + 1][0] == end:
        end = runs[index + 1][1]
    return start, end


def _outside(runs: list[TextRange], regions: list[TextRange]) -> list[TextRange]:
    """The ``runs`` that overlap none of ``regions`` (both in order, regions disjoint)."""
    kept: list[TextRange] = []
    index = 0
    for run in runs:
        while index < len(regions) and regions[index][1] <= run[0]:
            index += 1
        if index == len(regions) or run[1] <= regions[index][0]:
            kept.append(run)
    return kept


def _moved(runs: list[TextRange], replaced: list[TextRange]) -> list[TextRange]:
    """Where ``runs`` are after replacing ``replaced`` (both in order). A run that held a
    replaced span lies in a changed region, which is scanned again, so its span need only
    stay in order."""
    moved: list[TextRange] = []
    shift = 0  # how much shorter the text before the current run got
    index = 0
    for start, end in runs:
        while index < len(replaced) and replaced[index][1] <= start:
            shift += replaced[index][1] - replaced[index][0] - len(_PLACEHOLDER)
            index += 1
        new_start = start - shift
        while index < len(replaced) and replaced[index][1] <= end:
            shift += replaced[index][1] - replaced[index][0] - len(_PLACEHOLDER)
            index += 1
        moved.append((new_start, max(new_start, end - shift)))
    return moved


def _union(spans: list[TextRange]) -> list[TextRange]:
    """``spans`` sorted, overlapping ones merged (windows of a long run can overlap)."""
    merged: list[TextRange] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _after_replacing(regions: list[TextRange], replaced: list[TextRange]) -> list[TextRange]:
    """Where ``regions`` (in order, each holding whole replaced spans) are after replacing,
    merged where they overlap."""
    moved: list[TextRange] = []
    shift = 0  # how much shorter the text before the current position got
    index = 0
    for start, end in regions:
        new_start = start - shift
        while index < len(replaced) and replaced[index][0] < end:
            span_start, span_end = replaced[index]
            shift += span_end - span_start - len(_PLACEHOLDER)
            index += 1
        if moved and new_start <= moved[-1][1]:
            moved[-1] = (moved[-1][0], max(moved[-1][1], end - shift))
        else:
            moved.append((new_start, end - shift))
    return moved
