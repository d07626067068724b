"""Query-string parsing for the read-only ``/api/`` routes: every bad value is a 400 that
names its parameter, so a caller fixes the request instead of reading an empty answer.

Times are UTC. ``from`` and ``to`` are inclusive: a date as ``to`` covers that whole day,
so ``from=2025-06-01&to=2025-06-07`` is seven days. Times keep nanoseconds (the store's
precision), so a timestamp copied from an answer selects exactly that row.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.datastructures import QueryParams

EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
FIRST_DAY: Final = datetime.date(1970, 1, 1)
LAST_DAY: Final = datetime.date(2261, 12, 31)
"""The days a bound may name: nanoseconds since 1970 stay within Int64 until 2262."""
_NS_PER_DAY: Final = 86_400 * 1_000_000_000
_INSTANT: Final = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<fraction>\d{1,9}))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_TRACE_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_HEX: Final = re.compile(r"^[0-9a-f]{0,32}$")
_FOREIGN_CURSOR: Final = "cursor is not one this API gave; pass next_cursor unchanged."
_INT64: Final = range(-(2**63), 2**63)


class BadParameter(ValueError):
    """A request the API answers with 400; ``parameter`` names the part at fault."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def single_values(params: QueryParams, allowed: Collection[str]) -> dict[str, str]:
    """The query string as one value per name; an empty value counts as not given (as a
    blank form field sends it). Unknown and repeated names are refused, so a typo such as
    ``promt=`` is not silently an unfiltered answer."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in params.multi_items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadParameter(name, f"unknown parameter {name!r}; this route takes: {known}.")
        if name in seen:
            raise BadParameter(name, f"{name} is given more than once; give it once.")
        seen.add(name)
        if value != "":
            values[name] = value
    return values


def day(values: Mapping[str, str], name: str) -> datetime.date | None:
    """An ISO date (``2025-06-01``)."""
    text = values.get(name)
    if text is None:
        return None
    try:
        parsed = datetime.date.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, f"{name}={text!r} is not a date; use YYYY-MM-DD.") from None
    return _in_range(name, text, parsed)


def _in_range(name: str, text: str, parsed: datetime.date) -> datetime.date:
    if not FIRST_DAY <= parsed <= LAST_DAY:
        raise BadParameter(
            name, f"{name}={text!r} is out of range; use a day from {FIRST_DAY} to {LAST_DAY}."
        )
    return parsed


def instant_ns(values: Mapping[str, str], name: str, *, end: bool) -> int | None:
    """A date or an ISO 8601 time (``2025-06-01T12:00:00.5Z``; no offset means UTC) as
    nanoseconds since the epoch. A date as an ``end`` bound is its day's last nanosecond."""
    text = values.get(name)
    if text is None:
        return None
    if len(text) == 10:
        try:
            start = datetime.date.fromisoformat(text)
        except ValueError:
            pass
        else:
            days = (_in_range(name, text, start) - FIRST_DAY).days + int(end)
            return days * _NS_PER_DAY - int(end)
    match = _INSTANT.match(text)
    try:
        if match is None:
            raise ValueError(text)
        offset = (match["offset"] or "+00:00").upper().replace("Z", "+00:00")
        moment = datetime.datetime.fromisoformat(match["base"].replace(" ", "T") + offset)
    except ValueError:
        raise BadParameter(
            name,
            f"{name}={text!r} is not a date or time; use YYYY-MM-DD or an ISO 8601 time "
            "such as 2025-06-01T12:00:00Z.",
        ) from None
    try:
        utc_day = moment.astimezone(datetime.timezone.utc).date()
    except OverflowError:
        utc_day = datetime.date.max
    _in_range(name, text, utc_day)
    fraction = int((match["fraction"] or "").ljust(9, "0"))
    return (moment - EPOCH) // datetime.timedelta(seconds=1) * 1_000_000_000 + fraction


_Bound = TypeVar("_Bound", int, datetime.date)


def ordered(values: Mapping[str, str], low: _Bound | None, high: _Bound | None) -> None:
    """Refuse a range that ends before it starts (it could only answer nothing)."""
    if low is not None and high is not None and high < low:
        raise BadParameter("to", f"to={values['to']!r} is before from={values['from']!r}.")


def iso_ns(nanoseconds: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC, all nine decimals."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = EPOCH + datetime.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def limit(values: Mapping[str, str], *, default: int, most: int) -> int:
    """A page size; above ``most`` it is ``most`` (the answer says which was used)."""
    text = values.get("limit")
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise BadParameter("limit", f"limit={text!r} is not a whole number >= 1.")
    return min(int(text), most)


def trace_id(text: str) -> str:
    """32 hex digits, not all zero (W3C trace context), in the store's lowercase."""
    lowered = text.lower()
    if not _TRACE_ID.match(lowered) or not lowered.strip("0"):
        raise BadParameter(
            "trace_id", f"trace id {text!r} is not 32 hex digits (and not all zeros)."
        )
    return lowered


@dataclass(frozen=True)
class Cursor:
    """Where a feedback page ended: the last row's key (time, trace, span), and how many
    rows with exactly that key the pages so far returned (ties must not repeat or go
    missing at a page boundary)."""

    timestamp_ns: int
    trace_id: str
    span_id: str
    skip: int

    def encode(self) -> str:
        key = [self.timestamp_ns, self.trace_id, self.span_id, self.skip]
        text = json.dumps(key, separators=(",", ":")).encode("ascii")
        return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, values: Mapping[str, str]) -> Cursor | None:
        text = values.get("cursor")
        if text is None:
            return None
        try:
            key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            timestamp_ns, trace, span, skip = key
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            raise BadParameter("cursor", _FOREIGN_CURSOR) from None
        if not (
            type(timestamp_ns) is int
            and timestamp_ns in _INT64
            and type(skip) is int
            and skip >= 1
            and isinstance(trace, str)
            and isinstance(span, str)
            and _HEX.match(trace)
            and _HEX.match(span)
        ):
            raise BadParameter("cursor", _FOREIGN_CURSOR)
        return cls(timestamp_ns, trace, span, skip)
