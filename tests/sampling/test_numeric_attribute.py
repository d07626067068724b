"""numeric_attribute: ints only (pdata's Value.Int()), inclusive bounds, 0 means unset."""

from __future__ import annotations

import re
from typing import Any

import pytest

from closedloop.sampling import Decision, SamplingConfigError

from .support import config, decide, policy, view

HTTP_5XX = policy("numeric_attribute", key="code", min_value=500, max_value=599)
SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED


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
def test_numeric_attribute_reads_only_ints_with_inclusive_bounds(
    value: Any, expected: Decision
) -> None:
    assert decide(HTTP_5XX, view(attributes={"code": value})) is expected


def test_numeric_attribute_checks_resource_and_every_span() -> None:
    assert decide(HTTP_5XX, view(resource={"code": 503})) is SAMPLED
    spans = (view(span_id=1, attributes={"code": 200}), view(span_id=2, attributes={"code": 502}))
    assert decide(HTTP_5XX, *spans) is SAMPLED
    assert decide(HTTP_5XX, view(attributes={"other": 503})) is NOT_SAMPLED


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-5, SAMPLED), (2, SAMPLED), (3, NOT_SAMPLED), (503.0, SAMPLED), ("x", SAMPLED)],
)
def test_numeric_zero_bound_means_unset(value: Any, expected: Decision) -> None:
    at_most_two = policy("numeric_attribute", key="n", max_value=2)
    assert decide(at_most_two, view(attributes={"n": value})) is expected


def test_numeric_min_only_is_unbounded_above() -> None:
    at_least = policy("numeric_attribute", key="n", min_value=10)
    assert decide(at_least, view(attributes={"n": 2**62})) is SAMPLED
    assert decide(at_least, view(attributes={"n": 9})) is NOT_SAMPLED


def test_numeric_invert_match_samples_iff_nothing_in_range() -> None:
    inverted = policy("numeric_attribute", key="n", min_value=1, max_value=9, invert_match=True)
    assert decide(inverted, view(attributes={"n": 5})) is NOT_SAMPLED
    assert decide(inverted, view(attributes={"n": 50})) is SAMPLED
    assert decide(inverted, view()) is SAMPLED


@pytest.mark.parametrize("section", [{"key": "n"}, {"key": "n", "min_value": 0, "max_value": 0}])
def test_numeric_both_bounds_zero_is_a_config_error(section: dict[str, Any]) -> None:
    with pytest.raises(SamplingConfigError, match=re.escape("tail_sampling.policies[0]")):
        config(policy("numeric_attribute", **section))
