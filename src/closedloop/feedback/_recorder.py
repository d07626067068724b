"""``closedloop.feedback.record`` and its shorthands: feedback as OTel spans (Contract 2).

A feedback signal is a ``closedloop.feedback`` span in the evaluated call's trace,
parented to the evaluated span, carrying one ``gen_ai.evaluation.result`` event. Any
OTLP backend shows it as an event; closedloop's store turns it into ``feedback_signals``;
tail sampling keeps every trace that has one.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from closedloop import __version__
from closedloop import _runtime as runtime
from closedloop._bootstrap import active_tracer_provider
from closedloop._errors import ClosedloopError
from closedloop._time_range import EARLIEST_S, LATEST_NS
from closedloop._validation import (
    finite_number,
    require_choice,
    require_non_empty_str,
    require_type,
)
from closedloop.feedback._targets import FeedbackTarget, Target, parent_context, resolve
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation._settings import active_settings

logger = logging.getLogger("closedloop.feedback")

FeedbackKind = Literal["explicit", "implicit", "outcome", "judge", "label"]
"""Who or what judged the call (Contract 2's ``closedloop.feedback.kind``)."""
KINDS: tuple[FeedbackKind, ...] = get_args(FeedbackKind)

SafetyLevel = Literal["none", "low", "medium", "high"]
"""The app's safety filter verdict on a call's output (Contract 2's ``safety`` labels)."""
SAFETY_LEVELS: tuple[SafetyLevel, ...] = get_args(SafetyLevel)

EVENT_NAME = attr.EVALUATION_RESULT_EVENT
SPAN_NAME = attr.FEEDBACK_SPAN_NAME


@dataclass(frozen=True)
class Recorded:
    """Ids of the feedback span that was emitted."""

    trace_id: str
    span_id: str


def _number(field: str, value: float | None) -> float | None:
    if value is None:
        return None
    require_type(field, value, (bool, numbers.Real), "pass a number, a bool or None.")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"feedback {field} must be finite, got {value!r}.")
    return number


# Feedback about an LLM call happens after 2000 and at most a day ahead of this clock
# (clock skew); anything else is a unit mistake the store would refuse much later.
_SKEW_S = 86_400
# Contract 2's value ranges for the names every metric reads: (low, high, whole numbers).
_VALUE_RANGES: dict[str, tuple[float, float, bool]] = {
    "thumbs": (0, 1, True),
    "rating": (1, 5, True),
    "edit_ratio": (0, 1, False),
}
# Epoch seconds beyond this are capped before they are scaled to nanoseconds (a float would
# overflow); the cap is still far past every bound checked here.
_FAR_FUTURE_S = 10**18


def _check_timestamp_ns(ns: int, given: object, *, allow_future: bool = False) -> int:
    """``ns`` is after 2000 and not ahead of this clock (``allow_future``: for generators
    and replays that write simulated time, only within what the store can hold). Compared
    as ints: any int is refused with a ValueError, never an OverflowError."""
    if allow_future:
        latest, when = LATEST_NS, "in 2100 or later, beyond what the store holds"
        expected = "nanoseconds since the epoch"
    else:
        latest, when = time.time_ns() + _SKEW_S * 1_000_000_000, "in the future (after now + 1 day)"
        expected = "epoch seconds or an aware datetime"
    if ns > latest:
        unit = "" if allow_future or ns // 1000 > latest else " Milliseconds? Divide by 1000."
        raise ValueError(f"feedback timestamp={given!r} is {when}; pass {expected}.{unit}")
    if ns < EARLIEST_S * 1_000_000_000:
        unit = " Seconds? Multiply by 10**9." if allow_future and ns >= EARLIEST_S else ""
        raise ValueError(
            f"feedback timestamp={given!r} is before 2000-01-01; pass {expected}.{unit}"
        )
    return ns


def _timestamp_ns(timestamp: datetime.datetime | float | None) -> int:
    if timestamp is None:
        return time.time_ns()
    require_type(
        "timestamp", timestamp, (datetime.datetime, int, float), "pass an aware datetime or "
        "epoch seconds."
    )  # fmt: skip
    if isinstance(timestamp, datetime.datetime):
        if timestamp.tzinfo is None:
            raise ValueError(
                "feedback timestamp must be timezone-aware (e.g. datetime.now(timezone.utc))."
            )
        since_epoch = timestamp - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return _check_timestamp_ns(
            since_epoch // datetime.timedelta(microseconds=1) * 1_000, timestamp
        )
    if finite_number("timestamp", timestamp, "pass epoch seconds.") <= 0:
        raise ValueError(f"feedback timestamp must be positive epoch seconds, got {timestamp!r}.")
    return _check_timestamp_ns(int(min(timestamp, _FAR_FUTURE_S) * 1_000_000_000), timestamp)


def check_sent_timestamp_ns(ns: int, given: object, *, now_ns: int) -> int:
    """``ns`` within the window ``record`` enforces (after 2000, at most a day ahead of
    ``now_ns``), for a time another process sent in nanoseconds (the server's feedback
    endpoint): the message names the likely unit mistake in those terms."""
    fix = "pass nanoseconds since the epoch (an int) or an RFC 3339 time with an offset."
    if ns > now_ns + _SKEW_S * 1_000_000_000:
        raise ValueError(
            f"feedback timestamp={given!r} is in the future (after now + 1 day); {fix}"
        )
    if ns < EARLIEST_S * 1_000_000_000:
        unit = ""
        for exponent, name in ((0, "Seconds"), (3, "Milliseconds"), (6, "Microseconds")):
            if EARLIEST_S * 10**exponent <= ns < EARLIEST_S * 10 ** (exponent + 3):
                unit = f" {name}? Multiply by 10**{9 - exponent}."
        raise ValueError(f"feedback timestamp={given!r} is before 2000-01-01; {fix}{unit}")
    return ns


def _require_content(
    name: str, score: float | None, label: str | None, comment: str | None
) -> None:
    if score is None and label is None and comment is None:
        raise ValueError(f"feedback {name!r} needs a value, a label or a comment.")


def _check_value_range(name: str, score: float | None) -> None:
    """Values outside Contract 2's ranges would corrupt the rates and means built on them."""
    bounds = _VALUE_RANGES.get(name)
    if bounds is not None and score is not None:
        low, high, whole = bounds
        if not low <= score <= high or (whole and not score.is_integer()):
            kind = "a whole number" if whole else "a number"
            raise ValueError(
                f"feedback {name!r} value={score:g} is out of range; {name} takes {kind} "
                f"from {low:g} to {high:g}."
            )


def _check_safety_label(name: str, label: str | None) -> None:
    """Only the latest signal of a name per call counts: a safety signal without a level
    would silently cancel an earlier "high"."""
    if name == "safety" and label not in SAFETY_LEVELS:
        raise ValueError(
            f"feedback 'safety' needs the field label= set to a level, got label={label!r}; "
            f"use one of {', '.join(SAFETY_LEVELS)}, or feedback.safety(target, level)."
        )


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    require_non_empty_str(field, value, f"pass the feedback {field} as text.")
    return value


def _warn_no_provider() -> None:
    """Once per process: every later record() would say the same."""
    if not runtime.current().first_time("feedback.no_tracer_provider"):
        return
    logger.warning(
        "closedloop.feedback: no TracerProvider is configured, feedback goes nowhere; "
        "call closedloop.instrument() (or set up OpenTelemetry) first."
    )


def tracer_for(provider: trace.TracerProvider) -> trace.Tracer:
    """The tracer feedback spans come from (one scope, wherever they are made)."""
    return provider.get_tracer("closedloop.feedback", __version__)


def _tracer() -> trace.Tracer:
    provider = active_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        _warn_no_provider()
    return tracer_for(provider)


class InvalidFeedbackField(ClosedloopError, ValueError):
    """One field of a feedback signal breaks Contract 2: ``field`` names it, the message
    says the fix (for callers that answer per field, such as the server's endpoint)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@contextlib.contextmanager
def _blaming(field: str) -> Iterator[None]:
    try:
        yield
    except (TypeError, ValueError) as error:
        raise InvalidFeedbackField(field, str(error)) from error


def check_signal(
    name: Any,
    value: Any,
    *,
    label: Any = None,
    comment: Any = None,
    kind: Any = "explicit",
    source: Any = None,
) -> None:
    """``emit``'s checks on a signal straight from a request (any JSON values), in the same
    order and with the same messages, each failure an :class:`InvalidFeedbackField`."""
    with _blaming("name"):  # required here: emit() turns a None name into ""
        require_non_empty_str("name", name, "pass the feedback name as text.")
    with _blaming("kind"):
        require_choice("kind", kind, KINDS)
    with _blaming("value"):
        score = _number("value", value)
    for field, text in (("label", label), ("comment", comment), ("source", source)):
        with _blaming(field):
            _text(field, text)
    with _blaming("value"):
        _require_content(name, score, label, comment)
        _check_value_range(name, score)
    with _blaming("label"):
        _check_safety_label(name, label)


def record(
    target: FeedbackTarget,
    name: str,
    value: float | None = None,
    *,
    label: str | None = None,
    comment: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """Attach one feedback signal to the call ``target`` names.

    ``target``: a 32-hex trace id, ``trace_id:span_id`` (see ``call_id``), a span context,
    or a response object returned by an instrumented call. ``value`` is a number (a bool
    counts as 1/0). ``timestamp`` (aware datetime or epoch seconds) says when the feedback
    was given, for feedback recorded later. ``comment`` is free text: it is redacted like
    other content, and dropped when content capture is off; ``label`` is a category
    (``up``, ``high``), recorded as given. ``source`` says where it came from (``web``).
    Returns the feedback span's ids, or None when no TracerProvider records spans.
    """
    resolved = resolve(target)
    start_ns = _timestamp_ns(timestamp)
    return emit(
        _tracer(), resolved, name, value, label=label, comment=comment, kind=kind,
        source=source, timestamp_ns=start_ns,
    )  # fmt: skip


def emit(
    tracer: trace.Tracer,
    target: Target,
    name: str,
    value: float | None = None,
    *,
    label: str | None = None,
    comment: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp_ns: int,
) -> Recorded | None:
    """``record`` through a given tracer at an exact nanosecond time: for tools that
    produce feedback spans themselves (traffic generators, replays, importers)."""
    resolved = resolve(target)
    name = _text("name", name) or ""
    require_choice("kind", kind, KINDS)
    score = _number("value", value)
    label = _text("label", label)
    comment = _text("comment", comment)
    source = _text("source", source)
    _require_content(name, score, label, comment)
    _check_value_range(name, score)
    _check_safety_label(name, label)
    require_type("timestamp_ns", timestamp_ns, int, "pass whole nanoseconds since the epoch.")
    _check_timestamp_ns(timestamp_ns, timestamp_ns, allow_future=True)
    explanation = _redacted(comment) if comment is not None else None

    attributes: dict[str, AttributeValue] = {
        attr.FEEDBACK_KIND: kind,
        attr.FEEDBACK_NAME: name,
    }
    event: dict[str, AttributeValue] = {attr.EVALUATION_NAME: name}
    for span_key, event_key, item in (
        (attr.FEEDBACK_VALUE, attr.EVALUATION_SCORE_VALUE, score),
        (attr.FEEDBACK_LABEL, attr.EVALUATION_SCORE_LABEL, label),
        (attr.FEEDBACK_SOURCE, None, source),
        (None, attr.EVALUATION_EXPLANATION, explanation),
    ):
        if item is None:
            continue
        if span_key:
            attributes[span_key] = item
        if event_key:
            event[event_key] = item
    parent = trace.set_span_in_context(trace.NonRecordingSpan(parent_context(resolved)))
    span = tracer.start_span(
        SPAN_NAME,
        context=parent,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        start_time=timestamp_ns,
    )
    if not span.is_recording():
        return None
    span.add_event(EVENT_NAME, event, timestamp=timestamp_ns)
    span.end(end_time=timestamp_ns + 1_000)
    context = span.get_span_context()
    return Recorded(trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id))


def _redacted(text: str) -> str | None:
    settings = active_settings()
    if not settings.capture_content:
        return None
    if settings.redactor is None:
        return text
    return settings.redactor.redact(text).text


def thumbs(
    target: FeedbackTarget,
    up: bool,
    *,
    comment: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """Thumbs up (True) or down (False): ``thumbs`` = 1/0 with the label ``up``/``down``."""
    require_type("up", up, bool, "pass up=True or up=False.")
    return record(
        target, "thumbs", up, label="up" if up else "down", comment=comment, kind=kind,
        source=source, timestamp=timestamp,
    )  # fmt: skip


def rating(
    target: FeedbackTarget,
    stars: int,
    *,
    label: str | None = None,
    comment: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """A 1-5 star rating."""
    require_type("stars", stars, int, "pass a whole number of stars from 1 to 5.")
    if not 1 <= stars <= 5:
        raise ValueError(f"rating must be a whole number of stars from 1 to 5, got {stars!r}.")
    return record(
        target, "rating", stars, label=label, comment=comment, kind=kind, source=source,
        timestamp=timestamp,
    )  # fmt: skip


def comment(
    target: FeedbackTarget,
    text: str,
    *,
    label: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """Free-text feedback (redacted before it is recorded)."""
    return record(
        target, "comment", label=label, comment=text, kind=kind, source=source,
        timestamp=timestamp,
    )  # fmt: skip


def outcome(
    target: FeedbackTarget,
    name: str,
    value: float,
    *,
    label: str | None = None,
    comment: str | None = None,
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """A real-world result known later, e.g. ``ticket_reopened``, ``task_succeeded``
    (a bool, recorded as 1/0, or a number)."""
    if value is None:
        raise TypeError(f"outcome {name!r} needs a value (True/False or a number), got None.")
    return record(
        target, name, value, label=label, comment=comment, kind="outcome", source=source,
        timestamp=timestamp,
    )  # fmt: skip


def safety(
    target: FeedbackTarget,
    level: SafetyLevel,
    *,
    comment: str | None = None,
    kind: FeedbackKind = "explicit",
    source: str | None = None,
    timestamp: datetime.datetime | float | None = None,
) -> Recorded | None:
    """The app's safety filter verdict on the call's output: ``none`` (nothing found) to
    ``high``. ``prompt_version_metrics`` reports the trigger rate per level."""
    require_choice("level", level, SAFETY_LEVELS)
    return record(
        target, "safety", label=level, comment=comment, kind=kind, source=source,
        timestamp=timestamp,
    )  # fmt: skip
