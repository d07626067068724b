"""closedloop.sampling decides exactly as the collector contrib tail_sampling processor v0.161.0.

The collector facts checked here (pdata coercions, decision precedence, timing, caches,
the probabilistic hash and threshold) are the spec; the reference values for FNV-1a and
the probabilistic threshold are computed independently in this file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from closedloop.feedback.recorder import SPAN_NAME
from closedloop.sampling import (
    DROPPED,
    NOT_SAMPLED,
    SAMPLED,
    SamplerConfig,
    SamplingConfigError,
    SpanView,
    TailSampler,
    TailSamplingSpanProcessor,
    load,
    sampler_config,
)
from closedloop.sampling.policies import combine, sampling_threshold
from closedloop.sampling.trace import BufferedTrace

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_CONFIG = ROOT / "collector" / "otel-collector.yaml"
MAX_UINT64 = 2**64 - 1
FEEDBACK_SPAN = "closedloop.feedback"  # DESIGN.md Contract 2: what makes a span feedback
PACKAGED_POLICY = "otel-collector.yaml"  # in closedloop/sampling/, read by load() with no path


# --- independent references -------------------------------------------------------------


def reference_fnv1a_64(data: bytes) -> int:
    """FNV-1a 64, straight from the spec (offset basis, prime, xor-then-multiply)."""
    value = 14695981039346656037
    for byte in data:
        value ^= byte
        value = (value * 1099511628211) % 2**64
    return value


def reference_threshold(percentage: float) -> int:
    """Go: ``big.Float(MaxUint64) * big.NewFloat(pct / 100)`` at 64-bit precision (the
    receiver's), round half to even, then ``Uint64()`` truncating. ``pct / 100`` is a
    float64 division, exactly as Go computes the ratio."""
    numerator, denominator = (percentage / 100).as_integer_ratio()  # exact float64 value
    product = MAX_UINT64 * numerator  # value = product / denominator (a power of two)
    if product <= 0:
        return 0
    shift = product.bit_length() - 64
    if shift > 0:
        quotient, remainder = divmod(product, 1 << shift)
        half = 1 << (shift - 1)
        if remainder > half or (remainder == half and quotient & 1):
            quotient += 1
        product = quotient << shift
    return min(product // denominator, MAX_UINT64)


def reference_probabilistic(trace_id: int, percentage: float, salt: str) -> bool:
    digest = reference_fnv1a_64(salt.encode() + trace_id.to_bytes(16, "big"))
    return digest <= reference_threshold(percentage)


def spread_trace_ids(seed: int) -> Iterator[int]:
    """Well-spread 128-bit trace ids (FNV-1a barely mixes the last bytes of small ints)."""
    k = seed
    while True:
        k += 1
        yield (k * 0x9E3779B97F4A7C15F39CC0605CEDC835) % 2**128 or 1


def first_trace_id(seed: int, wanted: Callable[[int], bool]) -> int:
    return next(trace_id for trace_id in spread_trace_ids(seed) if wanted(trace_id))


def unsampled_by_baseline(seed: int) -> int:
    """A trace id the production config's 15% baseline does NOT sample."""
    return first_trace_id(seed, lambda t: not reference_probabilistic(t, 15, "default-hash-seed"))


def sampled_by_baseline(seed: int) -> int:
    return first_trace_id(seed, lambda t: reference_probabilistic(t, 15, "default-hash-seed"))


# --- builders -----------------------------------------------------------------------------


def view(
    trace_id: int = 1,
    *,
    span_id: int = 1,
    name: str = "span",
    attributes: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    status: int = 0,
    start_ns: int = 1_000_000_000,
    end_ns: int = 1_001_000_000,
    kind: int = 1,
    events: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> SpanView:
    return SpanView(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=0,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status=status,
        flags=1,
        trace_state="",
        attributes=dict(attributes or {}),
        resource=dict(resource or {}),
        events=tuple(events),
    )


def trace(*spans: SpanView) -> BufferedTrace:
    return BufferedTrace(spans[0].trace_id if spans else 1, list(spans))


def config(*policies: dict[str, Any], **processor: Any) -> SamplerConfig:
    specs = [{"name": f"p{i}", **spec} for i, spec in enumerate(policies)]
    return sampler_config({**processor, "policies": specs})


def policy(kind: str, **section: Any) -> dict[str, Any]:
    """A policy spec of type ``kind`` with its ``kind:`` section."""
    return {"type": kind, kind: section} if section else {"type": kind}


def decide(policies: dict[str, Any] | list[dict[str, Any]], *spans: SpanView) -> str:
    specs = policies if isinstance(policies, list) else [policies]
    return combine(config(*specs).policies, trace(*spans), False)[0]


class FixedIds(IdGenerator):
    """Trace ids from a list (so probabilistic decisions are known), span ids counting up."""

    def __init__(self, trace_ids: Iterable[int]) -> None:
        self._trace_ids = iter(trace_ids)
        self._span_id = 0

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)

    def generate_span_id(self) -> int:
        self._span_id += 1
        return self._span_id


def sdk_provider(
    trace_ids: Iterable[int] = (), resource: Mapping[str, Any] | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    options: dict[str, Any] = {"resource": Resource.create(dict(resource or {}))}
    if trace_ids:
        options["id_generator"] = FixedIds(trace_ids)
    provider = TracerProvider(**options)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.02)


def recording_sampler(cfg: SamplerConfig) -> tuple[TailSampler, list[SpanView]]:
    forwarded: list[SpanView] = []
    return TailSampler(cfg, forwarded.extend), forwarded


# --- SpanView.of ----------------------------------------------------------------------------


def test_span_view_of_keeps_otlp_types_kinds_status_and_events() -> None:
    provider, exporter = sdk_provider(
        trace_ids=[0x0AF7651916CD43DD8448EB211C80319C], resource={"service.name": "svc"}
    )
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("i", 3)
            child.set_attribute("f", 3.0)
            child.set_attribute("b", True)
            child.set_attribute("s", "x")
            child.set_attribute("seq", [1, 2])
            child.add_event("exception", {"code": 7})
    child_span, root_span = exporter.get_finished_spans()
    child_view, root_view = SpanView.of(child_span), SpanView.of(root_span)

    assert root_view.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert (root_view.kind, child_view.kind) == (2, 3)  # OTLP SERVER, CLIENT
    assert (root_view.status, child_view.status) == (2, 0)  # ERROR, UNSET
    assert root_view.parent_span_id == 0
    assert child_view.parent_span_id == root_view.span_id
    assert child_view.resource["service.name"] == "svc"
    attributes = child_view.attributes
    assert type(attributes["i"]) is int and type(attributes["f"]) is float
    assert attributes["b"] is True and attributes["s"] == "x"
    assert tuple(attributes["seq"]) == (1, 2)
    assert child_view.events[0][0] == "exception"
    assert dict(child_view.events[0][1]) == {"code": 7}
    assert child_view.start_ns == child_span.start_time
    assert child_view.end_ns == child_span.end_time
    assert child_view.source is child_span


# --- combining --------------------------------------------------------------------------------

ERROR_SPAN = {"status": 2}
ERRORS = policy("status_code", status_codes=["ERROR"])
NEVER = policy("probabilistic", sampling_percentage=0)


def test_any_sampled_policy_samples_and_none_is_not_sampled() -> None:
    assert decide([NEVER, ERRORS], view(**ERROR_SPAN)) == SAMPLED
    assert decide([NEVER, ERRORS], view()) == NOT_SAMPLED


def test_drop_beats_any_sampling_policy_whatever_the_order() -> None:
    drop = policy("drop", drop_sub_policy=[{"name": "d0", **ERRORS}])
    assert decide([policy("always_sample"), drop], view(**ERROR_SPAN)) == DROPPED
    assert decide([drop, policy("always_sample")], view(**ERROR_SPAN)) == DROPPED
    assert decide([policy("always_sample"), drop], view()) == SAMPLED


def test_drop_drops_only_when_all_sub_policies_match() -> None:
    drop = policy(
        "drop",
        drop_sub_policy=[
            {"name": "d0", **ERRORS},
            {"name": "d1", **policy("string_attribute", key="route", values=["/health"])},
        ],
    )
    always = policy("always_sample")
    both = view(**ERROR_SPAN, attributes={"route": "/health"})
    assert decide([always, drop], both) == DROPPED
    assert decide([always, drop], view(**ERROR_SPAN)) == SAMPLED
    assert decide([always, drop], view(attributes={"route": "/health"})) == SAMPLED


def test_and_samples_only_when_all_sub_policies_match() -> None:
    both = policy(
        "and",
        and_sub_policy=[
            {"name": "a0", **ERRORS},
            {"name": "a1", **policy("numeric_attribute", key="n", min_value=1, max_value=9)},
        ],
    )
    assert decide(both, view(**ERROR_SPAN, attributes={"n": 5})) == SAMPLED
    assert decide(both, view(**ERROR_SPAN)) == NOT_SAMPLED
    assert decide(both, view(attributes={"n": 5})) == NOT_SAMPLED


def test_not_inverts_its_sub_policy() -> None:
    not_errors = policy("not", not_sub_policy={"name": "n0", **ERRORS})
    assert decide(not_errors, view(**ERROR_SPAN)) == NOT_SAMPLED
    assert decide(not_errors, view()) == SAMPLED


def test_invert_match_no_longer_vetoes_other_policies() -> None:
    # v0.161: invert decisions are gone; a matching invert_match policy is plain NotSampled.
    inverted = policy("string_attribute", key="k", values=["v"], invert_match=True)
    assert decide([policy("always_sample"), inverted], view(attributes={"k": "v"})) == SAMPLED


def test_combine_names_the_deciding_policy_and_honours_sample_on_first_match() -> None:
    cfg = config(NEVER, ERRORS, policy("always_sample"), sample_on_first_match=True)
    assert cfg.sample_on_first_match is True
    assert combine(cfg.policies, trace(view(**ERROR_SPAN)), True) == (SAMPLED, "p1")
    assert combine(cfg.policies, trace(view()), False) == (SAMPLED, "p2")
    assert combine(config(NEVER).policies, trace(view()), False) == (NOT_SAMPLED, None)


# --- numeric_attribute ------------------------------------------------------------------------

HTTP_5XX = policy("numeric_attribute", key="code", min_value=500, max_value=599)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (503, SAMPLED),
        (500, SAMPLED),  # bounds inclusive
        (599, SAMPLED),
        (499, NOT_SAMPLED),
        (600, NOT_SAMPLED),
        (503.0, NOT_SAMPLED),  # a double reads as 0
        ("503", NOT_SAMPLED),  # a string reads as 0
        (True, NOT_SAMPLED),  # a bool reads as 0
    ],
)
def test_numeric_attribute_reads_only_ints_with_inclusive_bounds(value: Any, expected: str) -> None:
    assert decide(HTTP_5XX, view(attributes={"code": value})) == expected


def test_numeric_attribute_checks_resource_and_every_span() -> None:
    assert decide(HTTP_5XX, view(resource={"code": 503})) == SAMPLED
    spans = (view(span_id=1, attributes={"code": 200}), view(span_id=2, attributes={"code": 502}))
    assert decide(HTTP_5XX, *spans) == SAMPLED
    assert decide(HTTP_5XX, view(attributes={"other": 503})) == NOT_SAMPLED


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-5, SAMPLED), (2, SAMPLED), (3, NOT_SAMPLED), (503.0, SAMPLED), ("x", SAMPLED)],
)
def test_numeric_zero_bound_means_unset(value: Any, expected: str) -> None:
    at_most_two = policy("numeric_attribute", key="n", max_value=2)
    assert decide(at_most_two, view(attributes={"n": value})) == expected


def test_numeric_min_only_is_unbounded_above() -> None:
    at_least = policy("numeric_attribute", key="n", min_value=10)
    assert decide(at_least, view(attributes={"n": 2**62})) == SAMPLED
    assert decide(at_least, view(attributes={"n": 9})) == NOT_SAMPLED


def test_numeric_invert_match_samples_iff_nothing_in_range() -> None:
    inverted = policy("numeric_attribute", key="n", min_value=1, max_value=9, invert_match=True)
    assert decide(inverted, view(attributes={"n": 5})) == NOT_SAMPLED
    assert decide(inverted, view(attributes={"n": 50})) == SAMPLED
    assert decide(inverted, view()) == SAMPLED


@pytest.mark.parametrize("section", [{"key": "n"}, {"key": "n", "min_value": 0, "max_value": 0}])
def test_numeric_both_bounds_zero_is_a_config_error(section: dict[str, Any]) -> None:
    with pytest.raises(SamplingConfigError, match=re.escape("tail_sampling.policies[0]")):
        config(policy("numeric_attribute", **section))


# --- string_attribute -------------------------------------------------------------------------


def test_string_attribute_exact_match_on_resource_or_any_span() -> None:
    exact = policy("string_attribute", key="k", values=["a", "b"])
    assert decide(exact, view(attributes={"k": "b"})) == SAMPLED
    assert decide(exact, view(resource={"k": "a"})) == SAMPLED
    assert decide(exact, view(span_id=1), view(span_id=2, attributes={"k": "a"})) == SAMPLED
    assert decide(exact, view(attributes={"k": "ab"})) == NOT_SAMPLED  # exact, not substring
    assert decide(exact, view(attributes={"k": "A"})) == NOT_SAMPLED
    assert decide(exact, view()) == NOT_SAMPLED


def test_string_attribute_empty_value_never_matches_exactly() -> None:
    empty = policy("string_attribute", key="k", values=[""])
    assert decide(empty, view(attributes={"k": ""})) == NOT_SAMPLED
    assert decide(empty, view(resource={"k": ""})) == NOT_SAMPLED
    # a non-string reads as "", so an int 5 is not the string "5"
    five = policy("string_attribute", key="k", values=["5"])
    assert decide(five, view(resource={"k": 5})) == NOT_SAMPLED
    assert decide(five, view(attributes={"k": 5})) == NOT_SAMPLED


def test_string_regex_searches_unanchored() -> None:
    regex = policy("string_attribute", key="k", values=["err"], enabled_regex_matching=True)
    assert decide(regex, view(attributes={"k": "server-error"})) == SAMPLED
    assert decide(regex, view(attributes={"k": "ok"})) == NOT_SAMPLED
    anchored = policy("string_attribute", key="k", values=["^err$"], enabled_regex_matching=True)
    assert decide(anchored, view(attributes={"k": "server-error"})) == NOT_SAMPLED
    assert decide(anchored, view(attributes={"k": "err"})) == SAMPLED


def test_string_regex_guards_empty_and_non_string_span_values_but_not_resource_values() -> None:
    anything = policy("string_attribute", key="k", values=[".*"], enabled_regex_matching=True)
    assert decide(anything, view(attributes={"k": ""})) == NOT_SAMPLED
    assert decide(anything, view(attributes={"k": 5})) == NOT_SAMPLED
    assert decide(anything, view(attributes={"k": True})) == NOT_SAMPLED
    assert decide(anything, view(resource={"k": ""})) == SAMPLED
    assert decide(anything, view(resource={"k": 5})) == SAMPLED  # reads as "", matches .*
    assert decide(anything, view()) == NOT_SAMPLED


def test_string_invert_match_samples_iff_nothing_matches_anywhere() -> None:
    inverted = policy("string_attribute", key="k", values=["bad"], invert_match=True)
    assert decide(inverted, view()) == SAMPLED  # missing key
    assert decide(inverted, view(attributes={"k": "good"})) == SAMPLED
    assert decide(inverted, view(attributes={"k": "bad"})) == NOT_SAMPLED
    assert decide(inverted, view(resource={"k": "bad"}, attributes={"k": "good"})) == NOT_SAMPLED
    spans = (view(span_id=1, attributes={"k": "good"}), view(span_id=2, attributes={"k": "bad"}))
    assert decide(inverted, *spans) == NOT_SAMPLED


def test_string_invert_regex_keeps_the_empty_span_value_guard() -> None:
    inverted = policy(
        "string_attribute", key="k", values=[".*"], enabled_regex_matching=True, invert_match=True
    )
    assert decide(inverted, view(attributes={"k": ""})) == SAMPLED
    assert decide(inverted, view(resource={"k": ""})) == NOT_SAMPLED


@pytest.mark.parametrize(("pattern", "value"), [(r"^\d+$", "\u0663"), ("^ok$", "ok\n")])
def test_string_regex_follows_re2_semantics(pattern: str, value: str) -> None:
    regex = policy("string_attribute", key="k", values=[pattern], enabled_regex_matching=True)
    assert decide(regex, view(attributes={"k": value})) == NOT_SAMPLED


# --- boolean_attribute ------------------------------------------------------------------------


def test_boolean_attribute_reads_non_bools_as_false() -> None:
    true = policy("boolean_attribute", key="b", value=True)
    false = policy("boolean_attribute", key="b", value=False)
    assert decide(true, view(attributes={"b": True})) == SAMPLED
    assert decide(true, view(resource={"b": True})) == SAMPLED
    assert decide(true, view(attributes={"b": "true"})) == NOT_SAMPLED
    assert decide(true, view(attributes={"b": 1})) == NOT_SAMPLED
    assert decide(false, view(attributes={"b": "true"})) == SAMPLED
    assert decide(false, view(attributes={"b": False})) == SAMPLED
    assert decide(false, view()) == NOT_SAMPLED  # missing key is not false


def test_boolean_invert_match() -> None:
    inverted = policy("boolean_attribute", key="b", value=True, invert_match=True)
    assert decide(inverted, view(attributes={"b": True})) == NOT_SAMPLED
    assert decide(inverted, view(attributes={"b": False})) == SAMPLED
    assert decide(inverted, view()) == SAMPLED


# --- status_code, span_count, latency -----------------------------------------------------------


def test_status_code_samples_any_span_with_a_listed_code() -> None:
    errors_or_ok = policy("status_code", status_codes=["ERROR", "OK"])
    assert decide(errors_or_ok, view(span_id=1), view(span_id=2, status=2)) == SAMPLED
    assert decide(errors_or_ok, view(status=1)) == SAMPLED
    assert decide(errors_or_ok, view(status=0)) == NOT_SAMPLED
    assert decide(policy("status_code", status_codes=["UNSET"]), view(status=0)) == SAMPLED


@pytest.mark.parametrize("codes", [["error"], ["ERROR", "FAILED"], []])
def test_status_code_unknown_or_missing_codes_are_config_errors(codes: list[str]) -> None:
    with pytest.raises(SamplingConfigError, match=re.escape("policies[0].status_codes")):
        config(policy("status_code", status_codes=codes))


@pytest.mark.parametrize(("count", "expected"), [(1, False), (2, True), (3, True), (4, False)])
def test_span_count_bounds_are_inclusive(count: int, expected: bool) -> None:
    spans = [view(span_id=i + 1) for i in range(count)]
    result = decide(policy("span_count", min_spans=2, max_spans=3), *spans)
    assert result == (SAMPLED if expected else NOT_SAMPLED)


def test_span_count_max_zero_is_unbounded() -> None:
    spans = [view(span_id=i + 1) for i in range(100)]
    assert decide(policy("span_count", min_spans=2, max_spans=0), *spans) == SAMPLED
    assert decide(policy("span_count", min_spans=2), spans[0]) == NOT_SAMPLED


MS = 1_000_000


@pytest.mark.parametrize(
    ("duration_ns", "expected"),
    [(10 * MS, NOT_SAMPLED), (11 * MS - 1, NOT_SAMPLED), (11 * MS, SAMPLED)],
)
def test_latency_truncates_to_whole_ms_and_lower_bound_is_exclusive(
    duration_ns: int, expected: str
) -> None:
    span = view(start_ns=5_000 * MS, end_ns=5_000 * MS + duration_ns)
    assert decide(policy("latency", threshold_ms=10), span) == expected


def test_latency_spans_earliest_start_to_latest_end() -> None:
    first = view(span_id=1, start_ns=1_000 * MS, end_ns=1_004 * MS)
    second = view(span_id=2, start_ns=1_010 * MS, end_ns=1_015 * MS)
    # each span is 4-5 ms, the trace is 15 ms
    assert decide(policy("latency", threshold_ms=14), first, second) == SAMPLED
    assert decide(policy("latency", threshold_ms=15), first, second) == NOT_SAMPLED


def test_latency_upper_bound_is_inclusive() -> None:
    bounded = policy("latency", threshold_ms=10, upper_threshold_ms=20)
    for millis, expected in [(10, NOT_SAMPLED), (11, SAMPLED), (20, SAMPLED), (21, NOT_SAMPLED)]:
        span = view(start_ns=1_000 * MS, end_ns=(1_000 + millis) * MS)
        assert decide(bounded, span) == expected, millis


def test_latency_is_checked_on_the_running_window_in_arrival_order() -> None:
    bounded = policy("latency", threshold_ms=10, upper_threshold_ms=20)
    short = view(span_id=1, start_ns=1_000 * MS, end_ns=1_015 * MS)  # 15 ms: in range
    long = view(span_id=2, start_ns=1_000 * MS, end_ns=1_500 * MS)  # the trace is 500 ms
    assert decide(bounded, short, long) == SAMPLED  # sampled on the prefix
    assert decide(bounded, long, short) == NOT_SAMPLED


# --- probabilistic ----------------------------------------------------------------------------


def test_fnv1a_reference_matches_published_vectors() -> None:
    # sanity of the in-test reference itself (FNV-1a 64 test vectors)
    assert reference_fnv1a_64(b"") == 0xCBF29CE484222325
    assert reference_fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert reference_fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_sampling_threshold_extremes() -> None:
    assert sampling_threshold(100) == MAX_UINT64
    assert sampling_threshold(0) == 0
    assert sampling_threshold(50) == reference_threshold(50) == 2**63 - 1
    # the in-test reference reproduces the collector's verified 10% value
    assert reference_threshold(10) == 1844674407370955263


def test_sampling_threshold_ten_percent_is_the_collectors_value() -> None:
    assert sampling_threshold(10) == 1844674407370955263


@pytest.mark.parametrize("percentage", [15, 1, 33.3])
def test_sampling_threshold_matches_the_collector(percentage: float) -> None:
    assert sampling_threshold(percentage) == reference_threshold(percentage)


FIXED_TRACE_IDS = [
    1,
    0x0AF7651916CD43DD8448EB211C80319C,
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
    0x00000000000000010000000000000000,
    0x5B8EFFF798038103D269B633813FC60C,
]


@pytest.mark.parametrize("trace_id", FIXED_TRACE_IDS)
@pytest.mark.parametrize(("percentage", "salt"), [(50, ""), (25, "my-salt"), (10, ""), (90, "s")])
def test_probabilistic_hashes_salt_and_trace_id_bytes(
    trace_id: int, percentage: float, salt: str
) -> None:
    spec = policy("probabilistic", sampling_percentage=percentage, hash_salt=salt)
    expected = reference_probabilistic(trace_id, percentage, salt or "default-hash-seed")
    assert decide(spec, view(trace_id)) == (SAMPLED if expected else NOT_SAMPLED)


def test_probabilistic_default_salt_is_default_hash_seed() -> None:
    # a trace id the default salt samples at 50% and an explicit other salt does not
    trace_id = first_trace_id(
        1,
        lambda t: (
            reference_probabilistic(t, 50, "default-hash-seed")
            and not reference_probabilistic(t, 50, "other")
        ),
    )
    assert decide(policy("probabilistic", sampling_percentage=50), view(trace_id)) == SAMPLED
    explicit = policy("probabilistic", sampling_percentage=50, hash_salt="default-hash-seed")
    assert decide(explicit, view(trace_id)) == SAMPLED
    other = policy("probabilistic", sampling_percentage=50, hash_salt="other")
    assert decide(other, view(trace_id)) == NOT_SAMPLED


def test_probabilistic_zero_and_hundred_percent() -> None:
    for trace_id in FIXED_TRACE_IDS:
        assert decide(policy("probabilistic", sampling_percentage=100), view(trace_id)) == SAMPLED
        assert decide(NEVER, view(trace_id)) == NOT_SAMPLED


def test_probabilistic_rate_is_roughly_the_percentage() -> None:
    spec = policy("probabilistic", sampling_percentage=20)
    trace_ids = [t * 7919 + 13 for t in range(2000)]
    kept = [t for t in trace_ids if decide(spec, view(t)) == SAMPLED]
    assert kept == [t for t in trace_ids if reference_probabilistic(t, 20, "default-hash-seed")]
    assert 250 < len(kept) < 550


# --- ottl_condition ---------------------------------------------------------------------------


def ottl(span: list[str] | None = None, spanevent: list[str] | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {"error_mode": "ignore"}
    if span:
        section["span"] = span
    if spanevent:
        section["spanevent"] = spanevent
    return policy("ottl_condition", **section)


def test_ottl_span_conditions_are_or_ed() -> None:
    spec = ottl(span=['name == "a"', 'attributes["k"] == "v"'])
    assert decide(spec, view(name="b", attributes={"k": "v"})) == SAMPLED
    assert decide(spec, view(name="a")) == SAMPLED
    assert decide(spec, view(name="b")) == NOT_SAMPLED
    assert decide(spec, view(span_id=1, name="x"), view(span_id=2, name="a")) == SAMPLED


def test_ottl_spanevent_conditions_are_evaluated_per_event() -> None:
    spec = ottl(spanevent=['name == "exception" and attributes["code"] == 1'])
    split = view(events=[("exception", {"code": 2}), ("other", {"code": 1})])
    assert decide(spec, split) == NOT_SAMPLED
    assert decide(spec, view(events=[("other", {}), ("exception", {"code": 1})])) == SAMPLED
    assert decide(spec, view(attributes={"code": 1}, name="exception")) == NOT_SAMPLED


def test_ottl_spanevent_can_read_the_span_and_resource() -> None:
    spec = ottl(spanevent=['span.name == "llm" and resource.attributes["env"] == "prod"'])
    assert decide(spec, view(name="llm", resource={"env": "prod"}, events=[("e", {})])) == SAMPLED
    assert decide(spec, view(name="llm", resource={"env": "prod"})) == NOT_SAMPLED  # no events


def test_ottl_span_and_spanevent_conditions_together() -> None:
    spec = ottl(span=['name == "a"'], spanevent=['name == "boom"'])
    assert decide(spec, view(name="z", events=[("boom", {})])) == SAMPLED
    assert decide(spec, view(name="a")) == SAMPLED
    assert decide(spec, view(name="z", events=[("fine", {})])) == NOT_SAMPLED


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        ('attributes["n"] == 1', {"n": 1.0}, True),  # int vs double: numeric
        ('attributes["n"] < 2.5', {"n": 2}, True),
        ('attributes["n"] >= 2', {"n": 2.0}, True),
        ('attributes["n"] + 1 == 3', {"n": 2}, True),
        ('attributes["n"] - 1 > 0', {"n": 1}, False),
        ('attributes["n"] == -1', {"n": -1}, True),
        ('attributes["s"] == 1', {"s": "1"}, False),  # type mismatch: false...
        ('attributes["s"] != 1', {"s": "1"}, True),  # ...except !=
        ('attributes["s"] < 1', {"s": "1"}, False),
        ('attributes["s"] > 1', {"s": "1"}, False),
        ('attributes["s"] < "b"', {"s": "a"}, True),  # strings compare lexically
        ('attributes["b"] == true', {"b": True}, True),
        ('attributes["b"] == 1', {"b": True}, False),  # bool is not an int
        ('attributes["b"] != 1', {"b": True}, True),
        ('attributes["b"] > false', {"b": True}, False),  # bools only ==, !=
        ('attributes["missing"] == nil', {}, True),  # nil == nil
        ('attributes["missing"] != nil', {}, False),
        ('attributes["s"] == nil', {"s": "x"}, False),
        ('attributes["s"] != nil', {"s": "x"}, True),
        ('attributes["missing"] > 0', {}, False),
        ('attributes["missing"] != 0', {}, True),
        ('not attributes["s"] == "x"', {"s": "x"}, False),
        ('(attributes["s"] == "y" or attributes["n"] == 1) and name == "span"', {"n": 1}, True),
        ('IsMatch(attributes["s"], "err")', {"s": "server-error"}, True),  # search
        ('IsMatch(attributes["s"], "^err$")', {"s": "server-error"}, False),
        ('IsMatch(attributes["missing"], ".*")', {}, False),
    ],
)
def test_ottl_comparison_rules(condition: str, attributes: dict[str, Any], expected: bool) -> None:
    assert decide(ottl(span=[condition]), view(attributes=attributes)) == (
        SAMPLED if expected else NOT_SAMPLED
    )


def test_ottl_span_fields_and_enums_on_sdk_spans() -> None:
    provider, exporter = sdk_provider(resource={"deployment.environment": "prod"})
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("handler", kind=SpanKind.SERVER) as span:
        span.set_status(Status(StatusCode.ERROR))
    (finished,) = exporter.get_finished_spans()
    spans = [SpanView.of(finished)]
    hits = [
        "status.code == STATUS_CODE_ERROR",
        "span.kind == SPAN_KIND_SERVER",
        'resource.attributes["deployment.environment"] == "prod"',
        "end_time_unix_nano - start_time_unix_nano >= 0",
    ]
    misses = ["status.code == STATUS_CODE_OK", "kind == SPAN_KIND_CLIENT", 'name != "handler"']
    for condition in hits:
        assert decide(ottl(span=[condition]), *spans) == SAMPLED, condition
    for condition in misses:
        assert decide(ottl(span=[condition]), *spans) == NOT_SAMPLED, condition


@pytest.mark.parametrize(
    "condition",
    [
        "Len(name) > 1",
        'set(attributes["x"], 1)',
        "trace_id == nil",
        'name == "a" and',
        'name == "a" "b"',
        'IsMatch(name, attributes["p"])',
        "attributes == nil",
        'instrumentation_scope.name == "x"',
    ],
)
def test_unsupported_ottl_is_a_config_error_at_load(condition: str) -> None:
    with pytest.raises(SamplingConfigError, match=re.escape("tail_sampling.policies[0]")):
        config(ottl(span=[condition]))


def test_spanevent_paths_outside_spanevent_context_are_rejected() -> None:
    with pytest.raises(SamplingConfigError):
        config(ottl(span=['spanevent.name == "x"']))


def test_spanevent_attributes_in_span_context_is_rejected() -> None:
    with pytest.raises(SamplingConfigError):
        config(ottl(span=['spanevent.attributes["x"] == nil']))


def test_ottl_policy_needs_a_condition_and_a_valid_error_mode() -> None:
    with pytest.raises(SamplingConfigError, match="at least one"):
        config(policy("ottl_condition", error_mode="ignore"))
    with pytest.raises(SamplingConfigError, match="error_mode"):
        config(policy("ottl_condition", error_mode="loud", span=['name == "a"']))


def test_ottl_non_ascii_string_literal() -> None:
    assert decide(ottl(span=['name == "café"']), view(name="café")) == SAMPLED


def test_ottl_is_match_converts_non_string_targets() -> None:
    assert (
        decide(ottl(span=['IsMatch(attributes["code"], "^5")']), view(attributes={"code": 503}))
        == SAMPLED
    )


# --- timing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("wait", "batches"), [("3s", 3), ("1s", 1), ("500ms", 1), ("2.9s", 2)])
def test_decision_batches(wait: str, batches: int) -> None:
    assert config(ERRORS, decision_wait=wait).decision_batches == batches


def test_trace_is_decided_on_the_tick_after_decision_wait() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="3s"))
    sampler.ingest([view(7, status=2)])
    assert [sampler.tick() for _ in range(3)] == [0, 0, 0]
    assert forwarded == []
    assert sampler.tick() == 1
    assert [span.trace_id for span in forwarded] == [7]
    assert sampler.counts["traces_sampled"] == 1


def test_a_trace_joins_the_batch_of_its_first_span() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="2s"))
    sampler.ingest([view(1, span_id=1)])
    sampler.tick()
    sampler.ingest([view(1, span_id=2, status=2), view(2, span_id=3, status=2)])
    assert sampler.tick() == 0
    assert sampler.tick() == 1  # trace 1, with both spans; trace 2 is a batch later
    assert sorted(span.span_id for span in forwarded) == [1, 2]
    assert sampler.tick() == 1
    assert sorted(span.span_id for span in forwarded) == [1, 2, 3]


def test_drain_decides_every_pending_trace() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="10s"))
    sampler.ingest([view(1, status=2), view(2)])
    sampler.tick()
    sampler.ingest([view(3, status=2)])
    assert sampler.drain() == 3
    assert sorted(span.trace_id for span in forwarded) == [1, 3]
    assert sampler.counts["traces_not_sampled"] == 1


# --- num_traces -------------------------------------------------------------------------------


def test_num_traces_evicts_the_oldest_trace_even_undecided() -> None:
    sampler, forwarded = recording_sampler(
        config(policy("always_sample"), decision_wait="1s", num_traces=2)
    )
    sampler.ingest([view(1, span_id=1), view(2, span_id=2)])
    sampler.ingest([view(1, span_id=4)])  # a newer span does not make trace 1 newer
    sampler.ingest([view(3, span_id=3)])
    assert sampler.counts["traces_evicted_undecided"] == 1
    assert sampler.traces_in_memory == 2
    sampler.drain()
    assert sorted(span.trace_id for span in forwarded) == [2, 3]


def test_decided_traces_held_without_caches_are_evicted_without_counting() -> None:
    sampler, _ = recording_sampler(
        config(policy("always_sample"), decision_wait="1s", num_traces=2)
    )
    sampler.ingest([view(1), view(2)])
    sampler.drain()
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(3)])
    assert sampler.traces_in_memory == 2
    assert sampler.counts["traces_evicted_undecided"] == 0


# --- decision caches --------------------------------------------------------------------------

CACHES = {"sampled_cache_size": 10, "non_sampled_cache_size": 10}


def test_with_caches_late_spans_follow_the_cached_decision() -> None:
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=CACHES)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 0  # decided traces leave memory
    assert [span.span_id for span in forwarded] == [1]

    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]  # forwarded at once
    assert sampler.counts["late_spans_sampled"] == 1
    assert sampler.counts["late_spans_dropped"] == 1
    assert sampler.traces_in_memory == 0
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]  # the error late span stays dropped


def test_without_caches_decided_traces_stay_in_memory_and_late_spans_follow() -> None:
    sampler, forwarded = recording_sampler(config(ERRORS, decision_wait="1s"))
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts["late_spans_sampled"] == 1
    assert sampler.counts["late_spans_dropped"] == 1


def test_with_only_a_sampled_cache_not_sampled_traces_stay_and_late_spans_stay_dropped() -> None:
    """The collector evicts a decided trace only when its decision's cache stored it: a
    not-sampled trace with no not-sampled cache stays in memory, decided, so a late span that
    would sample on its own (late feedback, here an error) is dropped, not kept alone."""
    caches = {"sampled_cache_size": 10, "non_sampled_cache_size": 0}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 1  # trace 2, decided not sampled
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts["late_spans_sampled"] == 1
    assert sampler.counts["late_spans_dropped"] == 1
    assert sampler.counts["traces_sampled"] == 1  # trace 2 was not decided anew


def test_with_only_a_non_sampled_cache_sampled_traces_stay_and_late_spans_follow() -> None:
    """A sampled trace with no sampled cache stays in memory, decided, so a late span that
    would not sample on its own (a stream ending late) still follows its trace."""
    caches = {"sampled_cache_size": 0, "non_sampled_cache_size": 10}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2), view(2, span_id=2)])
    sampler.drain()
    assert sampler.traces_in_memory == 1  # trace 1, decided sampled
    sampler.ingest([view(1, span_id=11), view(2, span_id=12, status=2)])
    assert [span.span_id for span in forwarded] == [1, 11]  # forwarded at once
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 11]
    assert sampler.counts["late_spans_sampled"] == 1
    assert sampler.counts["late_spans_dropped"] == 1
    assert sampler.counts["traces_not_sampled"] == 1  # trace 2 was not decided anew


def test_num_traces_evicts_by_admission_of_the_traces_in_memory_now() -> None:
    """A trace that left memory leaves the eviction order too (the collector removes its
    deleteTraceQueue element), so the same trace id admitted again is the newest trace,
    and decided traces kept in memory are evicted in turn, uncounted."""
    caches = {"sampled_cache_size": 1, "non_sampled_cache_size": 0}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", num_traces=3, decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1), view(2, span_id=2, status=2)])
    sampler.drain()  # 1 stays (not sampled, no cache); 2 leaves, cached
    sampler.ingest([view(6, span_id=6), view(3, span_id=3, status=2)])
    sampler.drain()  # 6 stays; 3 leaves, cached, and pushes 2 out of the size-1 cache
    assert sampler.traces_in_memory == 2
    sampler.ingest([view(2, span_id=4, status=2)])  # decided anew: admitted after 6
    sampler.ingest([view(7, span_id=7)])  # evicts 1
    sampler.ingest([view(8, span_id=8)])  # evicts 6, not the re-admitted 2
    assert sampler.counts["traces_evicted_undecided"] == 0
    sampler.drain()
    assert [span.span_id for span in forwarded] == [2, 3, 4]


def test_a_late_span_of_a_dropped_trace_is_dropped() -> None:
    drop = policy("drop", drop_sub_policy=[{"name": "d", **ERRORS}])
    sampler, forwarded = recording_sampler(
        config(policy("always_sample"), drop, decision_wait="1s")
    )
    sampler.ingest([view(1, status=2)])
    sampler.drain()
    sampler.ingest([view(1, span_id=2)])
    assert forwarded == []
    assert sampler.counts["traces_dropped"] == 1
    assert sampler.counts["late_spans_dropped"] == 1


def test_a_span_later_than_the_cache_is_decided_anew() -> None:
    caches = {"sampled_cache_size": 1, "non_sampled_cache_size": 1}
    sampler, forwarded = recording_sampler(
        config(ERRORS, decision_wait="1s", decision_cache=caches)
    )
    sampler.ingest([view(1, span_id=1, status=2)])
    sampler.drain()
    sampler.ingest([view(2, span_id=2, status=2)])
    sampler.drain()  # trace 2's decision pushes trace 1 out of the size-1 cache
    sampler.ingest([view(1, span_id=3)])
    assert sampler.counts["late_spans_sampled"] == 0
    assert sampler.traces_in_memory == 1
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1, 2]  # decided anew: not an error


# --- config errors ----------------------------------------------------------------------------


def errors_for(section: dict[str, Any]) -> str:
    with pytest.raises(SamplingConfigError) as raised:
        sampler_config(section)
    return str(raised.value)


def test_config_defaults_and_values() -> None:
    cfg = config(
        ERRORS,
        decision_wait="250ms",
        num_traces=7,
        decision_cache={"sampled_cache_size": 3, "non_sampled_cache_size": 4},
    )
    assert cfg.decision_wait_s == pytest.approx(0.25)
    assert (cfg.num_traces, cfg.sampled_cache_size, cfg.non_sampled_cache_size) == (7, 3, 4)
    defaults = config(ERRORS)
    assert defaults.decision_wait_s == 30.0 and defaults.num_traces == 50_000
    assert (defaults.sampled_cache_size, defaults.non_sampled_cache_size) == (0, 0)


def test_unknown_processor_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS}], "bogus_key": 1})
    assert "tail_sampling" in message and "bogus_key" in message


def test_unknown_decision_cache_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS}], "decision_cache": {"size": 1}})
    assert "tail_sampling.decision_cache" in message and "size" in message


def test_unknown_policy_key_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", **ERRORS, "extra": {}}]})
    assert "tail_sampling.policies[0]" in message and "extra" in message
    status = {"name": "b", "type": "status_code", "status_code": {"status_codes": [], "bogus": 1}}
    message = errors_for({"policies": [{"name": "a", **NEVER}, status]})
    assert "tail_sampling.policies[1].status_code" in message and "bogus" in message


@pytest.mark.parametrize("kind", ["rate_limiting", "bytes_limiting", "composite"])
def test_wall_clock_policies_are_unsupported(kind: str) -> None:
    message = errors_for({"policies": [{"name": "a", "type": kind, kind: {}}]})
    assert "tail_sampling.policies[0]" in message and kind in message
    assert "not supported" in message


def test_unknown_policy_type_is_named() -> None:
    message = errors_for({"policies": [{"name": "a", "type": "telepathy", "telepathy": {}}]})
    assert "tail_sampling.policies[0]" in message and "telepathy" in message


@pytest.mark.parametrize(
    ("policies", "fragment"),
    [
        ([{"type": "always_sample"}], "policies[0].name"),
        ([{"name": "", "type": "always_sample"}], "policies[0].name"),
        ([{"name": "a"}], "policies[0].type"),
        ([{"name": "a", "type": "always_sample"}, {"name": "a", **ERRORS}], "unique"),
        ([], "policies must be a non-empty list"),
    ],
)
def test_policy_names_and_types_are_required_and_unique(
    policies: list[dict[str, Any]], fragment: str
) -> None:
    assert fragment in errors_for({"policies": policies})


def test_missing_policies_is_an_error() -> None:
    assert "tail_sampling.policies" in errors_for({"decision_wait": "1s"})


@pytest.mark.parametrize("wait", ["10", "ten seconds", "10 s", "10sec", "s"])
def test_bad_duration_is_named(wait: str) -> None:
    message = errors_for({"decision_wait": wait, "policies": [{"name": "a", **ERRORS}]})
    assert "tail_sampling.decision_wait" in message


def test_compound_go_duration_is_accepted() -> None:
    assert config(ERRORS, decision_wait="1m30s").decision_wait_s == 90.0


def test_bad_regex_is_named() -> None:
    bad = policy("string_attribute", key="k", values=["(unclosed"], enabled_regex_matching=True)
    message = errors_for({"policies": [{"name": "a", **bad}]})
    assert "tail_sampling.policies[0].values" in message and "regex" in message
    # without regex matching the same value is just a literal
    config(policy("string_attribute", key="k", values=["(unclosed"]))


def test_regex_outside_re2_is_a_config_error() -> None:
    lookahead = policy("string_attribute", key="k", values=["a(?=b)"], enabled_regex_matching=True)
    with pytest.raises(SamplingConfigError):
        config(lookahead)


@pytest.mark.parametrize(
    ("outer", "inner"), [("and", "and"), ("and", "drop"), ("drop", "and"), ("drop", "drop")]
)
def test_nested_and_drop_are_errors(outer: str, inner: str) -> None:
    leaf = {"name": "x", **ERRORS}
    nested = {"name": "inner", "type": inner, inner: {f"{inner}_sub_policy": [leaf]}}
    spec = {"name": "outer", "type": outer, outer: {f"{outer}_sub_policy": [nested]}}
    message = errors_for({"policies": [spec]})
    assert f"tail_sampling.policies[0].{outer}.{outer}_sub_policy[0]" in message
    assert "nested" in message


def test_and_inside_not_is_an_error() -> None:
    inner = {"name": "i", "type": "and", "and": {"and_sub_policy": [{"name": "x", **ERRORS}]}}
    negation = {"name": "n", "type": "not", "not": {"not_sub_policy": inner}}
    message = errors_for({"policies": [negation]})
    assert "tail_sampling.policies[0].not.not_sub_policy" in message


def test_wrong_value_types_are_named() -> None:
    message = errors_for({"num_traces": "many", "policies": [{"name": "a", **ERRORS}]})
    assert "num_traces" in message
    message = errors_for({"policies": [{"name": "a", **policy("latency", threshold_ms="5")}]})
    assert "tail_sampling.policies[0].threshold_ms" in message


def test_load_reads_the_named_processor(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "processors:\n"
        "  tail_sampling/custom:\n"
        "    decision_wait: 2s\n"
        "    policies:\n"
        "      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n",
        encoding="utf-8",
    )
    assert load(path, "tail_sampling/custom").decision_batches == 2
    with pytest.raises(SamplingConfigError, match=re.escape("tail_sampling/custom")):
        load(path)


def test_load_names_the_path_of_an_error(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "processors:\n  tail_sampling:\n    policies:\n      - {name: a, type: rate_limiting}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        SamplingConfigError, match=re.escape("processors.tail_sampling.policies[0]")
    ):
        load(path)


# --- the production collector config ----------------------------------------------------------


@pytest.fixture(scope="module")
def production() -> SamplerConfig:
    return load(PRODUCTION_CONFIG)


def test_production_config_settings(production: SamplerConfig) -> None:
    assert production.decision_wait_s == 10.0
    assert production.decision_batches == 10
    assert production.num_traces == 100_000
    assert (production.sampled_cache_size, production.non_sampled_cache_size) == (
        200_000,
        1_000_000,
    )
    assert [p.name for p in production.policies] == ["errors", "feedback", "new-users", "baseline"]


def production_decisions(
    production: SamplerConfig, build: Callable[[Any], None], trace_id: int
) -> str:
    """Decide one SDK-built trace with the production policies through a TailSampler."""
    provider, exporter = sdk_provider(trace_ids=[trace_id], resource={"service.name": "app"})
    with provider.get_tracer("t").start_as_current_span("request") as root:
        build(root)
    spans = [SpanView.of(span) for span in exporter.get_finished_spans()]
    assert {span.trace_id for span in spans} == {trace_id}
    decisions = {}
    sampler = TailSampler(production, lambda views: decisions.update(forwarded=views))
    sampler.ingest(spans)
    assert [sampler.tick() for _ in range(production.decision_batches)] == [0] * 10
    assert sampler.tick() == 1  # decided on the 11th tick
    return SAMPLED if decisions else NOT_SAMPLED


def _error(span: Any) -> None:
    span.set_status(Status(StatusCode.ERROR, "boom"))


def _feedback(kind: Any = None) -> Callable[[Any], None]:
    """A span named closedloop.feedback (Contract 2), with a kind attribute when given."""

    def build(span: Any) -> None:
        span.update_name(FEEDBACK_SPAN)
        if kind is not None:
            span.set_attribute("closedloop.feedback.kind", kind)

    return build


def _kind_only(kind: str) -> Callable[[Any], None]:
    """A feedback kind attribute on a span that is not named closedloop.feedback."""
    return lambda span: span.set_attribute("closedloop.feedback.kind", kind)


def _new_user(value: Any) -> Callable[[Any], None]:
    return lambda span: span.set_attribute("closedloop.user.new", value)


def _plain(span: Any) -> None:
    span.set_attribute("gen_ai.request.model", "gpt-4o-mini")


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (_error, SAMPLED),
        (_feedback("explicit"), SAMPLED),
        (_feedback("judge"), SAMPLED),
        (_feedback("thumbs"), SAMPLED),  # the name decides, not the kind's value
        (_feedback(), SAMPLED),  # a closedloop.feedback span with no kind at all
        (_kind_only("explicit"), NOT_SAMPLED),  # the kind on another span is not feedback
        (_kind_only("outcome"), NOT_SAMPLED),
        (_new_user(True), SAMPLED),
        (_new_user(False), NOT_SAMPLED),
        (_new_user("true"), NOT_SAMPLED),  # a string is not a bool
        (_plain, NOT_SAMPLED),
    ],
)
def test_production_policies_on_representative_traces(
    production: SamplerConfig, build: Callable[[Any], None], expected: str
) -> None:
    trace_id = unsampled_by_baseline(0x1234)
    assert production_decisions(production, build, trace_id) == expected


def test_production_baseline_samples_plain_calls_by_trace_id(production: SamplerConfig) -> None:
    assert production_decisions(production, _plain, sampled_by_baseline(0x1234)) == SAMPLED
    assert production_decisions(production, _plain, unsampled_by_baseline(0x1234)) == NOT_SAMPLED


def test_production_late_feedback_follows_or_samples(production: SamplerConfig) -> None:
    sampler, forwarded = recording_sampler(production)
    kept, plain = sampled_by_baseline(0x99), unsampled_by_baseline(0x99)
    sampler.ingest([view(kept, span_id=1), view(plain, span_id=2)])
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1]
    sampler.ingest([view(kept, span_id=3, name=FEEDBACK_SPAN)])
    sampler.ingest([view(plain, span_id=4, name=FEEDBACK_SPAN)])
    assert [span.span_id for span in forwarded] == [1, 3]
    assert sampler.counts["late_spans_sampled"] == 1
    assert sampler.counts["late_spans_dropped"] == 1  # the cached not-sampled decision holds


def test_the_feedback_recorder_names_its_spans_as_the_policy_matches_them(
    production: SamplerConfig,
) -> None:
    """One rule everywhere: the span name the recorder writes is the one the policy keeps."""
    assert SPAN_NAME == FEEDBACK_SPAN
    assert production_decisions(production, _feedback(), unsampled_by_baseline(0x4321)) == SAMPLED


# --- the packaged policy ----------------------------------------------------------------------


def test_the_packaged_policy_is_the_collector_config_byte_for_byte() -> None:
    packaged = resources.files("closedloop.sampling").joinpath(PACKAGED_POLICY)
    assert packaged.read_bytes() == PRODUCTION_CONFIG.read_bytes(), (
        "src/closedloop/sampling/otel-collector.yaml must be a copy of "
        "collector/otel-collector.yaml: cp collector/otel-collector.yaml "
        "src/closedloop/sampling/otel-collector.yaml"
    )


def test_load_without_a_path_reads_the_packaged_policy(production: SamplerConfig) -> None:
    packaged = load()
    assert (packaged.decision_wait_s, packaged.num_traces) == (
        production.decision_wait_s,
        production.num_traces,
    )
    assert [(p.name, type(p)) for p in packaged.policies] == [
        (p.name, type(p)) for p in production.policies
    ]


def pip(*arguments: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *arguments],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_an_installed_wheel_loads_the_policy_without_a_checkout(tmp_path: Path) -> None:
    """Build the wheel as pip does, check the policy file is in it, install it into an empty
    directory and load the policy from there, in a fresh interpreter away from the checkout."""
    pip("wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("closedloop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read(f"closedloop/sampling/{PACKAGED_POLICY}")
    assert packaged == PRODUCTION_CONFIG.read_bytes()
    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel))
    probe = (
        "import closedloop.sampling as s; c = s.load(); "
        "print(s.__file__); print(c.decision_wait_s, [p.name for p in c.policies])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    module_file, summary = loaded.stdout.splitlines()
    assert module_file.startswith(str(site))  # the installed copy, not the checkout
    assert summary == "10.0 ['errors', 'feedback', 'new-users', 'baseline']"


# --- TailSamplingSpanProcessor ------------------------------------------------------------------


def processor_config() -> SamplerConfig:
    return config(ERRORS, NEVER, decision_wait="1s")


def exported_trace_ids(exporter: InMemorySpanExporter) -> list[int]:
    return [span.context.trace_id for span in exporter.get_finished_spans()]


def test_processor_exports_error_traces_and_not_plain_ones() -> None:
    exporter = InMemorySpanExporter()
    processor = TailSamplingSpanProcessor(exporter, processor_config(), tick_seconds=0.05)
    provider = TracerProvider(id_generator=FixedIds([0xA1, 0xB2]))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("plain"):
            pass
        with tracer.start_as_current_span("failing") as root:
            with tracer.start_as_current_span("child"):
                pass
            root.set_status(Status(StatusCode.ERROR))
        wait_for(lambda: len(exporter.get_finished_spans()) >= 2)
        wait_for(lambda: processor.sampler.counts["traces_not_sampled"] >= 1)
        exported: list[ReadableSpan] = list(exporter.get_finished_spans())
        assert sorted(span.name for span in exported) == ["child", "failing"]
        assert set(exported_trace_ids(exporter)) == {0xB2}
    finally:
        provider.shutdown()
    assert set(exported_trace_ids(exporter)) == {0xB2}


def test_processor_shutdown_decides_and_exports_pending_traces() -> None:
    exporter = InMemorySpanExporter()
    # a tick interval that never elapses in this test: only shutdown can decide
    processor = TailSamplingSpanProcessor(exporter, processor_config(), tick_seconds=3600)
    provider = TracerProvider(id_generator=FixedIds([0xC3, 0xD4]))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("failing") as span:
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("plain"):
        pass
    assert processor.force_flush() is True
    assert exporter.get_finished_spans() == ()
    assert processor.sampler.traces_in_memory == 2
    provider.shutdown()
    assert exported_trace_ids(exporter) == [0xC3]
    assert processor.sampler.counts["traces_sampled"] == 1
    assert processor.sampler.counts["traces_not_sampled"] == 1


def test_processor_loads_the_production_file_by_path() -> None:
    exporter = InMemorySpanExporter()
    processor = TailSamplingSpanProcessor(exporter, str(PRODUCTION_CONFIG), tick_seconds=3600)
    provider = TracerProvider(
        id_generator=FixedIds([unsampled_by_baseline(0x77), unsampled_by_baseline(0x7777)])
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(FEEDBACK_SPAN):
        pass
    with tracer.start_as_current_span("plain"):
        pass
    assert processor.sampler.config.decision_batches == 10
    provider.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == [FEEDBACK_SPAN]
