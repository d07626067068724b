"""Content redaction, applied to prompts, outputs and error messages before they reach a span.

Redaction runs on every LLM call, so each built-in redactor is shaped for text without PII (the
common case): a substring test or a regex that ``re`` can skip through by its first character
rejects the text before any detailed pattern or checksum runs. Every match is replaced by a typed
placeholder such as ``<EMAIL>``; no built-in pattern can match a placeholder, so redacting already
redacted text changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
import string
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import phonenumbers

__all__ = [
    "PhoneRedactor",
    "RedactionPipeline",
    "RedactionResult",
    "Redactor",
    "RegexRedactor",
    "default_redactors",
    "redact_cards",
    "redact_emails",
    "redact_ibans",
    "redact_ips",
    "redact_secrets",
    "redact_ssns",
]

Span = tuple[int, int]


class Redactor(Protocol):
    """Anything that redacts text: returns the new text and how many replacements it made."""

    def __call__(self, text: str) -> tuple[str, int]: ...


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """Redacted text plus the replacement count, which is recorded on the span."""

    text: str
    count: int


# A placeholder as the built-ins write it; user patterns never redact inside one.
_PLACEHOLDER = r"<[A-Z][A-Z0-9_]*>"


class RegexRedactor:
    """Replaces every match of ``pattern`` with ``placeholder``, e.g. for employee or order ids.

    Matches that overlap a placeholder (``<EMAIL>``-style, or this redactor's own) are left
    alone, so a broad pattern such as ``[A-Z]{5}`` cannot break earlier redactions and running
    the redactor twice is a no-op.
    """

    __slots__ = ("_pattern", "_placeholder", "_protected", "_template")

    def __init__(self, pattern: str | re.Pattern[str], placeholder: str) -> None:
        compiled = re.compile(pattern)
        if compiled.search("") is not None:
            raise ValueError(
                f"pattern {compiled.pattern!r} matches the empty string, so it would insert "
                "placeholders everywhere; make it require at least one character"
            )
        if not placeholder:
            raise ValueError("placeholder must be non-empty, e.g. '<EMPLOYEE_ID>'")
        self._pattern = compiled
        self._placeholder = placeholder
        self._template = placeholder.replace("\\", "\\\\")  # a literal for re.subn
        self._protected = re.compile(f"{_PLACEHOLDER}|{re.escape(placeholder)}")

    def __call__(self, text: str) -> tuple[str, int]:
        protected = [match.span() for match in self._protected.finditer(text)]
        if not protected:
            return self._pattern.subn(self._template, text)
        starts = [start for start, _ in protected]
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            start, end = match.span()
            before = bisect_right(starts, start) - 1  # last placeholder starting at or before
            if (before >= 0 and protected[before][1] > start) or (
                before + 1 < len(protected) and protected[before + 1][0] < end
            ):
                return match.group()
            count += 1
            return self._placeholder

        return self._pattern.sub(replace, text), count

    def __repr__(self) -> str:
        return f"RegexRedactor({self._pattern.pattern!r}, {self._placeholder!r})"


class _CandidateRedactor:
    """The engine of the built-ins: cheap pre-check, candidate regex, then validation.

    ``spans`` maps a candidate match to the absolute spans to replace (none when validation
    fails). With an ``anchor`` (a character every candidate contains, like ``@``), the regex
    only searches from ``reach[0]`` characters before each occurrence to ``reach[1]`` after,
    instead of through the whole text.
    """

    __slots__ = ("_anchor", "_candidates", "_name", "_placeholder", "_precheck", "_reach", "_spans")

    def __init__(
        self,
        name: str,
        candidates: re.Pattern[str],
        placeholder: str,
        spans: Callable[[re.Match[str]], Iterable[Span]],
        *,
        precheck: Callable[[str], bool] | None = None,
        anchor: str | None = None,
        reach: tuple[int, int] = (0, 0),
    ) -> None:
        self._name = name
        self._candidates = candidates
        self._placeholder = placeholder
        self._spans = spans
        self._precheck = precheck
        self._anchor = anchor
        self._reach = reach

    def __call__(self, text: str) -> tuple[str, int]:
        if self._precheck is not None and not self._precheck(text):
            return text, 0
        parts: list[str] = []
        last = pos = 0
        while (match := self._next(text, pos)) is not None:
            for start, end in self._spans(match):
                parts.append(text[last:start])
                parts.append(self._placeholder)
                last = end
            # Resume after the last replacement: it can end before the candidate does (an IBAN
            # that swallowed the next word), and what follows may start another entity.
            pos = last if last > match.start() else match.end()
        if not parts:
            return text, 0
        count = len(parts) // 2
        parts.append(text[last:])
        return "".join(parts), count

    def _next(self, text: str, pos: int) -> re.Match[str] | None:
        """The first candidate at or after ``pos``."""
        if self._anchor is None:
            return self._candidates.search(text, pos)
        before, after = self._reach
        at = text.find(self._anchor, pos)
        while at >= 0:
            match = self._candidates.search(text, max(pos, at - before), at + after)
            if match is not None:
                return match
            at = text.find(self._anchor, at + 1)
        return None

    def __repr__(self) -> str:
        return f"<built-in redactor {self._name}>"


def _span(match: re.Match[str]) -> tuple[Span]:
    return (match.span(),)


class _Chain:
    """Several redactors sharing one placeholder, exposed as one (e.g. IPv6 then IPv4)."""

    __slots__ = ("_name", "_parts")

    def __init__(self, name: str, *parts: Redactor) -> None:
        self._name = name
        self._parts = parts

    def __call__(self, text: str) -> tuple[str, int]:
        total = 0
        for part in self._parts:
            text, count = part(text)
            total += count
        return text, total

    def __repr__(self) -> str:
        return f"<built-in redactor {self._name}>"


def _whole(valid: Callable[[str], bool]) -> Callable[[re.Match[str]], tuple[Span, ...]]:
    """Spans for validators that accept or reject a candidate as a whole."""

    def spans(match: re.Match[str]) -> tuple[Span, ...]:
        return (match.span(),) if valid(match.group()) else ()

    return spans


_ASCII_DIGITS = b"0123456789"


def _digit_count(text: str) -> int:
    """ASCII digits in ``text``, in two C passes: far cheaper than scanning with a regex.

    Most entities need several digits and most chat text has few, so this rejects it early.
    """
    ascii_only = text.encode("ascii", "ignore")
    return len(ascii_only) - len(ascii_only.translate(None, _ASCII_DIGITS))


# A regex scan that cannot skip ahead by a literal costs about 5 µs per KB, so patterns start
# with a literal (found at memchr speed) where they can, and otherwise run only after a cheap
# pre-check. Patterns check what precedes their first character with a width-2 lookbehind
# placed after it (``x(?<!\w.)``): a leading lookbehind would make ``re`` try every position.

# --- Secrets -------------------------------------------------------------------------------

_B = r"(?<![\w-].)"  # the first character starts a word
_TOKEN = r"[ \t]+(?![A-Z]?[a-z]+(?![\w\-.~+/=]))[\w\-.~+/]{16,}=*"  # not a plain word
_SECRETS = re.compile(
    rf"s{_B}k-[\w-]{{20,}}"  # OpenAI: sk-..., sk-proj-..., sk-svcacct-...
    rf"|A{_B}(?:KIA|SIA)[A-Z0-9]{{16}}(?![A-Za-z0-9])"  # AWS access key id
    rf"|g{_B}(?:h[pousr]_[A-Za-z0-9]{{36,}}|ithub_pat_\w{{22,}})"  # GitHub tokens
    rf"|x{_B}ox[abposr]-[A-Za-z0-9-]{{10,}}"  # Slack
    rf"|e{_B}yJ[\w-]+\.eyJ[\w-]+\.[\w-]*"  # JWT: header.payload.signature
    rf"|B{_B}(?:earer|EARER){_TOKEN}"  # Authorization: Bearer <token>
    rf"|b{_B}earer{_TOKEN}",
    re.ASCII,
)


def _has_secret_hint(text: str) -> bool:
    # A substring every secret below contains; each test runs at memchr-like speed.
    return (
        "_" in text
        or "sk-" in text
        or "IA" in text
        or "xox" in text
        or "eyJ" in text
        or "earer" in text
        or "EARER" in text
    )


def _secret_spans(match: re.Match[str]) -> tuple[Span, ...]:
    start, end = match.span()
    if match.string[start] in "Bb":  # keep the "Bearer" scheme, replace only the token
        return ((end - len(match.group()[6:].lstrip(" \t")), end),)
    return ((start, end),)


redact_secrets = _CandidateRedactor(
    "secrets", _SECRETS, "<SECRET>", _secret_spans, precheck=_has_secret_hint
)

# --- E-mail --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])", re.ASCII
)

# Searched only around each "@": RFC 5321 caps the local part at 64 characters and the domain
# at 255. The bounded window also keeps the unanchored local-part scan cheap.
redact_emails = _CandidateRedactor("emails", _EMAIL, "<EMAIL>", _span, anchor="@", reach=(64, 256))

# --- IBAN ----------------------------------------------------------------------------------

# ISO 13616 registry countries plus those with widely used national IBAN formats.
_IBAN_COUNTRY_CODES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO "
    "DZ EE EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM "
    "KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL "
    "PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
_IBAN_COUNTRIES = frozenset(_IBAN_COUNTRY_CODES.split())
_IBAN_DIGITS = {ord(letter): str(value) for value, letter in enumerate(string.ascii_uppercase, 10)}
_IBAN = re.compile(
    r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
    re.ASCII,
)


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or compact[:2] not in _IBAN_COUNTRIES:
        return False
    if not 2 <= int(compact[2:4]) <= 98:
        return False
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def _iban_spans(match: re.Match[str]) -> tuple[Span, ...]:
    # The candidate may have swallowed a following 4-character word ("... 7034 THEN"):
    # retry without trailing space-separated groups before giving up.
    candidate = match.group()
    while True:
        if _iban_valid(candidate.replace(" ", "")):
            return ((match.start(), match.start() + len(candidate)),)
        head, space, _ = candidate.rpartition(" ")
        if not space:
            return ()
        candidate = head


# Check digits plus a (mostly) numeric account number: real IBANs carry at least 12 digits.
redact_ibans = _CandidateRedactor(
    "ibans", _IBAN, "<IBAN>", _iban_spans, precheck=lambda text: _digit_count(text) >= 10
)

# --- Payment cards -------------------------------------------------------------------------

# Groups of 3+ digits joined by one space or dash: "4111 1111 1111 1111", "3782-822463-10005".
# Shorter groups end the run, so an expiry month after the number ("... 1111 12/26") stays out,
# and so does a group that continues as another number ("1111 123-45-6789", "1111 10.0.0.1").
_CARD_RUN = re.compile(
    r"\d(?<![\w+].)(?<!\d[-.].)(?=(?:[ -]?\d){12})\d{2,}(?:[ -]\d{3,})*(?!\w|[-.]\d)",
    re.ASCII,
)
_DIGIT_GROUP = re.compile(r"\d+", re.ASCII)
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit sum of 2 * d


def _luhn_valid(digits: str) -> bool:
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(map(int, digits[-1::-2])) + sum(map(int, doubled))) % 10 == 0


def _card_spans(match: re.Match[str]) -> list[Span]:
    run = match.group()
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < 13:
        return []
    if len(digits) <= 19:
        return [match.span()] if _luhn_valid(digits) else []
    # Longer than any card: a card next to other numbers. Try each run of whole groups with a
    # card's length and redact the union of the valid ones, so no card digit can leak.
    groups = [(group.start(), group.end()) for group in _DIGIT_GROUP.finditer(run)]
    base = match.start()
    spans: list[Span] = []
    offset = 0  # position in ``digits`` of the first group's first digit
    for first, (start, first_end) in enumerate(groups):
        length = 0
        for group_start, end in groups[first:]:
            length += end - group_start
            if length > 19:
                break
            if length >= 13 and _luhn_valid(digits[offset : offset + length]):
                if spans and base + start < spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], base + end))
                else:
                    spans.append((base + start, base + end))
        offset += first_end - start
    return spans


redact_cards = _CandidateRedactor(
    "cards", _CARD_RUN, "<CARD>", _card_spans, precheck=lambda text: _digit_count(text) >= 13
)

# --- US social security numbers ------------------------------------------------------------

# Anchored on the first dash, a literal: "123-45-6789" is found by looking back 3 digits.
_SSN = re.compile(r"-(?<=\d{3}-)(?<![\w-]\d{3}-)\d\d-\d{4}(?!\w|-\d)", re.ASCII)


def _ssn_spans(match: re.Match[str]) -> tuple[Span, ...]:
    start, end = match.start() - 3, match.end()
    area, group, serial = match.string[start:end].split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return ()
    return ((start, end),)


redact_ssns = _CandidateRedactor("ssns", _SSN, "<SSN>", _ssn_spans)

# --- IP addresses --------------------------------------------------------------------------

_DIGIT_DOT_DIGIT = re.compile(r"\.(?<=\d\.)\d", re.ASCII)
_IPV4 = re.compile(r"\d(?<![\w.].)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)", re.ASCII)
# A superset of IPv6 text (full, compressed, IPv4-suffixed); ``ipaddress`` decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?"
    r"(?![\w:]|\.\w)",
    re.ASCII,
)


def _ipv4_valid(address: str) -> bool:
    return all(int(octet) <= 255 for octet in address.split("."))


def _may_hold_ipv4(text: str) -> bool:
    return _digit_count(text) >= 4 and _DIGIT_DOT_DIGIT.search(text) is not None


def _ipv6_valid(address: str) -> bool:
    if address == "::":  # the unspecified address: a C++ scope operator far more often
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


# Every IPv6 form has two colons at most four hex digits apart ("::" or ":db8:"); starting
# with a literal, this finds them at memchr speed, unlike the full pattern.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")


def _may_hold_ipv6(text: str) -> bool:
    return _IPV6_HINT.search(text) is not None


redact_ips = _Chain(
    "ips",
    _CandidateRedactor("ipv6", _IPV6, "<IP>", _whole(_ipv6_valid), precheck=_may_hold_ipv6),
    _CandidateRedactor("ipv4", _IPV4, "<IP>", _whole(_ipv4_valid), precheck=_may_hold_ipv4),
)

# --- Phone numbers -------------------------------------------------------------------------

# Seven digits with at most a few separators between neighbours: every valid number in
# international or national format has that, while prose with a few numbers rarely does.
# In non-ASCII text Unicode digits count too: libphonenumber reads full-width and
# Arabic-Indic digits.
_PHONE_HINT = re.compile(r"\d(?:\D{0,4}\d){6}")
_ASCII_PHONE_HINT = re.compile(_PHONE_HINT.pattern, re.ASCII)


def _may_hold_phone(text: str) -> bool:
    ascii_only = text.encode("ascii", "ignore")
    # Any non-ASCII character might be a digit, so count them all before the Unicode regex.
    digits_at_most = len(text) - len(ascii_only.translate(None, _ASCII_DIGITS))
    if digits_at_most < 7:
        return False
    hint = _ASCII_PHONE_HINT if len(ascii_only) == len(text) else _PHONE_HINT
    return hint.search(text) is not None


class PhoneRedactor:
    """Replaces numbers that libphonenumber considers valid with ``<PHONE>``.

    Numbers written without a ``+`` country code are read as numbers of ``region``.
    Run it after the card, IBAN, IP and SSN redactors, whose digits it could otherwise read
    as phone numbers.
    """

    __slots__ = ("_region",)

    def __init__(self, region: str = "US") -> None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"phone_region {region!r} is not a region phonenumbers knows; "
                "use an ISO 3166 code such as 'US', 'GB' or 'DE'"
            )
        self._region = region

    @property
    def region(self) -> str:
        return self._region

    def __call__(self, text: str) -> tuple[str, int]:
        if not _may_hold_phone(text):
            return text, 0
        parts: list[str] = []
        last = 0
        for found in phonenumbers.PhoneNumberMatcher(
            text, self._region, leniency=phonenumbers.Leniency.VALID
        ):
            parts.append(text[last : found.start])
            parts.append("<PHONE>")
            last = found.end
        if not parts:
            return text, 0
        count = len(parts) // 2
        parts.append(text[last:])
        return "".join(parts), count

    def __repr__(self) -> str:
        return f"PhoneRedactor({self._region!r})"


def default_redactors(phone_region: str = "US") -> list[Redactor]:
    """The built-in redactors in the order that keeps them from stealing each other's matches.

    Secrets first (a token's digit runs would otherwise be replaced piecemeal, leaving the rest
    of it), IBANs before cards (an IBAN's digits can pass Luhn), and phones last: libphonenumber
    would read card, IBAN, IP and SSN digits as phone numbers.
    """
    return [
        redact_secrets,
        redact_emails,
        redact_ibans,
        redact_cards,
        redact_ssns,
        redact_ips,
        PhoneRedactor(phone_region),
    ]


_EMPTY = RedactionResult("", 0)
_MAX_PASSES = 3  # a bound in case a custom redactor keeps rewriting its own output


class RedactionPipeline:
    """Runs redactors in order and totals their replacements.

    ``redactors=None`` selects :func:`default_redactors` (``phone_region`` applies only then);
    ``extra`` redactors run after them, so they see text with built-in PII already replaced.
    """

    __slots__ = ("_redactors",)

    def __init__(
        self,
        redactors: Sequence[Redactor] | None = None,
        *,
        extra: Sequence[Redactor] = (),
        phone_region: str = "US",
    ) -> None:
        chosen = default_redactors(phone_region) if redactors is None else redactors
        self._redactors: tuple[Redactor, ...] = (*chosen, *extra)
        for redactor in self._redactors:
            if not callable(redactor):
                raise TypeError(f"redactor {redactor!r} is not callable as redactor(text)")

    @property
    def redactors(self) -> tuple[Redactor, ...]:
        return self._redactors

    def redact(self, text: str) -> RedactionResult:
        if not text:
            return _EMPTY
        total = 0
        for _ in range(_MAX_PASSES):
            before = text
            for redactor in self._redactors:
                text, count = redactor(text)
                total += count
            # A replacement can expose a new match to an earlier redactor ("1.2.3.4.5 123-..."
            # becomes "1.2.3.4.<PHONE>", now an IP), so repeat until nothing changes: then
            # redacting the result again is a no-op. Text without PII takes one pass.
            if text == before:
                break
        return RedactionResult(text, total)

    def __repr__(self) -> str:
        return f"RedactionPipeline({list(self._redactors)!r})"
