"""Tail-sampling policies, deciding exactly as the collector contrib ``tail_sampling``
processor does at the release pinned in ``collector/contrib-release.txt``.

The collector's quirks are part of the contract, because the same YAML drives both:
attribute values are read with pdata's coercions, string regexes search (unanchored),
``numeric_attribute`` treats a 0 bound as unset and reads only ints, latency is checked on
the running window after each span, probabilistic hashes with FNV-1a 64 over the salt and
the 16 trace-id bytes against an exactly computed threshold. Regexes are RE2 (google-re2),
the collector's regex engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import re2

from closedloop.sampling.ottl import Condition
from closedloop.sampling.trace import BufferedTrace, SpanView, bool_value, int_value, str_value

SAMPLED = "sampled"
NOT_SAMPLED = "not_sampled"
DROPPED = "dropped"
ERROR = "error"

MAX_UINT64 = (1 << 64) - 1
MIN_INT64, MAX_INT64 = -(1 << 63), (1 << 63) - 1
DEFAULT_HASH_SALT = "default-hash-seed"
STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


def _decide(matched: bool) -> str:
    return SAMPLED if matched else NOT_SAMPLED


def _any_resource_or_span(
    trace: BufferedTrace, matches: Callable[[Mapping[str, Any], bool], bool], invert: bool
) -> str:
    """The collector's hasResourceOrSpanWithCondition (and its inverted form)."""
    for span in trace.spans:
        for attributes, is_resource in ((span.resource, True), (span.attributes, False)):
            hit = matches(attributes, is_resource)
            if invert and hit:
                return NOT_SAMPLED
            if not invert and hit:
                return SAMPLED
    return _decide(invert)


class Policy(ABC):
    """One named policy of the ``policies`` list."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def evaluate(self, trace: BufferedTrace) -> str: ...


class AlwaysSample(Policy):
    def evaluate(self, trace: BufferedTrace) -> str:
        return SAMPLED


class Latency(Policy):
    def __init__(self, name: str, threshold_ms: int, upper_threshold_ms: int) -> None:
        super().__init__(name)
        self.threshold_ms = threshold_ms
        self.upper_threshold_ms = upper_threshold_ms

    def evaluate(self, trace: BufferedTrace) -> str:
        earliest = latest = 0
        for span in trace.spans:
            if earliest == 0 or span.start_ns < earliest:
                earliest = span.start_ns
            if latest == 0 or span.end_ns > latest:
                latest = span.end_ns
            elapsed = latest - earliest
            millis = abs(elapsed) // 1_000_000 * (1 if elapsed >= 0 else -1)
            if self.upper_threshold_ms == 0:
                if millis > self.threshold_ms:
                    return SAMPLED
            elif self.threshold_ms < millis <= self.upper_threshold_ms:
                return SAMPLED
        return NOT_SAMPLED


class NumericAttribute(Policy):
    def __init__(self, name: str, key: str, min_value: int, max_value: int, invert: bool) -> None:
        super().__init__(name)
        self.key = key
        self.low = min_value if min_value != 0 else MIN_INT64
        self.high = max_value if max_value != 0 else MAX_INT64
        self.invert = invert

    def evaluate(self, trace: BufferedTrace) -> str:
        def in_range(attributes: Mapping[str, Any], _: bool) -> bool:
            return (
                self.key in attributes and self.low <= int_value(attributes[self.key]) <= self.high
            )

        return _any_resource_or_span(trace, in_range, self.invert)


class StringAttribute(Policy):
    def __init__(
        self, name: str, key: str, values: Sequence[str], regex: bool, invert: bool
    ) -> None:
        super().__init__(name)
        self.key = key
        self.invert = invert
        if regex:
            patterns = [re2.compile(value) for value in values]
            self._matches: Callable[[str], bool] = lambda text: any(
                pattern.search(text) for pattern in patterns
            )
        else:
            exact = {value for value in values if value}
            self._matches = exact.__contains__

    def evaluate(self, trace: BufferedTrace) -> str:
        def matches(attributes: Mapping[str, Any], is_resource: bool) -> bool:
            if self.key not in attributes:
                return False
            text = str_value(attributes[self.key])
            return (is_resource or text != "") and self._matches(text)

        return _any_resource_or_span(trace, matches, self.invert)


class BooleanAttribute(Policy):
    def __init__(self, name: str, key: str, value: bool, invert: bool) -> None:
        super().__init__(name)
        self.key = key
        self.value = value
        self.invert = invert

    def evaluate(self, trace: BufferedTrace) -> str:
        def matches(attributes: Mapping[str, Any], _: bool) -> bool:
            return self.key in attributes and bool_value(attributes[self.key]) == self.value

        return _any_resource_or_span(trace, matches, self.invert)


def sampling_threshold(percentage: float) -> int:
    """(2^64-1) x ratio as the collector computes it: the ratio is the float64 ``pct / 100``,
    the product a 64-bit-mantissa big.Float (round half to even), truncated to uint64."""
    ratio = Fraction(percentage / 100)
    exact = Fraction(MAX_UINT64) * ratio
    if exact <= 0:
        return 0
    exponent = exact.numerator.bit_length() - exact.denominator.bit_length()
    while Fraction(2) ** exponent <= exact:
        exponent += 1
    while Fraction(2) ** (exponent - 1) > exact:
        exponent -= 1
    scale = Fraction(2) ** (exponent - 64)
    scaled = exact / scale
    mantissa, remainder = divmod(scaled.numerator, scaled.denominator)
    half = Fraction(remainder, scaled.denominator)
    if half > Fraction(1, 2) or (half == Fraction(1, 2) and mantissa % 2 == 1):
        mantissa += 1
    return min(int(mantissa * scale), MAX_UINT64)


def fnv1a_64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & MAX_UINT64
    return value


class Probabilistic(Policy):
    def __init__(self, name: str, percentage: float, salt: str) -> None:
        super().__init__(name)
        self.salt = (salt or DEFAULT_HASH_SALT).encode()
        self.threshold = sampling_threshold(percentage)

    def evaluate(self, trace: BufferedTrace) -> str:
        return _decide(fnv1a_64(self.salt + trace.trace_id_bytes) <= self.threshold)


class StatusCodeFilter(Policy):
    def __init__(self, name: str, codes: Iterable[int]) -> None:
        super().__init__(name)
        self.codes = frozenset(codes)

    def evaluate(self, trace: BufferedTrace) -> str:
        return _decide(any(span.status in self.codes for span in trace.spans))


class SpanCount(Policy):
    def __init__(self, name: str, min_spans: int, max_spans: int) -> None:
        super().__init__(name)
        self.min_spans = min_spans
        self.max_spans = max_spans

    def evaluate(self, trace: BufferedTrace) -> str:
        count = len(trace.spans)
        if self.max_spans == 0:
            return _decide(count >= self.min_spans)
        return _decide(self.min_spans <= count <= self.max_spans)


class OttlCondition(Policy):
    """Sampled when any span matches any span condition, or any of its events any
    span-event condition (the collector's OR semantics)."""

    def __init__(
        self, name: str, span: Sequence[Condition], spanevent: Sequence[Condition]
    ) -> None:
        super().__init__(name)
        self.span_conditions = tuple(span)
        self.event_conditions = tuple(spanevent)

    def evaluate(self, trace: BufferedTrace) -> str:
        for span in trace.spans:
            if any(condition.matches(span, None) for condition in self.span_conditions):
                return SAMPLED
            for event in span.events:
                if any(condition.matches(span, event) for condition in self.event_conditions):
                    return SAMPLED
        return NOT_SAMPLED


def _first_non_match(policies: Sequence[Policy], trace: BufferedTrace) -> str | None:
    """NotSampled (or Error) from the first sub-policy that does not match, else None."""
    for policy in policies:
        decision = policy.evaluate(trace)
        if decision in (NOT_SAMPLED, ERROR):
            return decision
    return None


class And(Policy):
    def __init__(self, name: str, policies: Sequence[Policy]) -> None:
        super().__init__(name)
        self.policies = tuple(policies)

    def evaluate(self, trace: BufferedTrace) -> str:
        return _first_non_match(self.policies, trace) or SAMPLED


class Not(Policy):
    def __init__(self, name: str, policy: Policy) -> None:
        super().__init__(name)
        self.policy = policy

    def evaluate(self, trace: BufferedTrace) -> str:
        decision = self.policy.evaluate(trace)
        return {SAMPLED: NOT_SAMPLED, NOT_SAMPLED: SAMPLED}.get(decision, decision)


class Drop(Policy):
    """Drops the trace when every sub-policy matches; a drop decision beats any sample."""

    def __init__(self, name: str, policies: Sequence[Policy]) -> None:
        super().__init__(name)
        self.policies = tuple(policies)

    def evaluate(self, trace: BufferedTrace) -> str:
        return _first_non_match(self.policies, trace) or DROPPED


def combine(
    policies: Sequence[Policy], trace: BufferedTrace, first_match: bool
) -> tuple[str, str | None]:
    """Drop policies first (any Dropped drops); then any Sampled samples. Returns the
    decision and the name of the policy that decided it."""
    for policy in policies:
        if isinstance(policy, Drop) and policy.evaluate(trace) == DROPPED:
            return DROPPED, policy.name
    chosen = None
    for policy in policies:
        if isinstance(policy, Drop):
            continue
        if policy.evaluate(trace) == SAMPLED and chosen is None:
            chosen = policy.name
            if first_match:
                break
    return (SAMPLED, chosen) if chosen else (NOT_SAMPLED, None)


__all__ = [
    "DROPPED",
    "ERROR",
    "NOT_SAMPLED",
    "SAMPLED",
    "STATUS_CODES",
    "AlwaysSample",
    "And",
    "BooleanAttribute",
    "Drop",
    "Latency",
    "Not",
    "NumericAttribute",
    "OttlCondition",
    "Policy",
    "Probabilistic",
    "SpanCount",
    "SpanView",
    "StatusCodeFilter",
    "StringAttribute",
    "combine",
]
