"""string_attribute: exact or RE2 search; non-strings read as "" (pdata's Value.Str())."""

from __future__ import annotations

import pytest

from closedloop.sampling import Decision, SamplingConfigError

from .support import config, decide, policy, view

SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED


def test_string_attribute_exact_match_on_resource_or_any_span() -> None:
    exact = policy("string_attribute", key="k", values=["a", "b"])
    assert decide(exact, view(attributes={"k": "b"})) is SAMPLED
    assert decide(exact, view(resource={"k": "a"})) is SAMPLED
    assert decide(exact, view(span_id=1), view(span_id=2, attributes={"k": "a"})) is SAMPLED
    assert decide(exact, view(attributes={"k": "ab"})) is NOT_SAMPLED  # exact, not substring
    assert decide(exact, view(attributes={"k": "A"})) is NOT_SAMPLED
    assert decide(exact, view()) is NOT_SAMPLED


def test_string_attribute_empty_value_never_matches_exactly() -> None:
    empty = policy("string_attribute", key="k", values=[""])
    assert decide(empty, view(attributes={"k": ""})) is NOT_SAMPLED
    assert decide(empty, view(resource={"k": ""})) is NOT_SAMPLED
    # a non-string reads as "", so an int 5 is not the string "5"
    five = policy("string_attribute", key="k", values=["5"])
    assert decide(five, view(resource={"k": 5})) is NOT_SAMPLED
    assert decide(five, view(attributes={"k": 5})) is NOT_SAMPLED


def test_string_regex_searches_unanchored() -> None:
    regex = policy("string_attribute", key="k", values=["err"], enabled_regex_matching=True)
    assert decide(regex, view(attributes={"k": "server-error"})) is SAMPLED
    assert decide(regex, view(attributes={"k": "ok"})) is NOT_SAMPLED
    anchored = policy("string_attribute", key="k", values=["^err$"], enabled_regex_matching=True)
    assert decide(anchored, view(attributes={"k": "server-error"})) is NOT_SAMPLED
    assert decide(anchored, view(attributes={"k": "err"})) is SAMPLED


def test_string_regex_guards_empty_and_non_string_span_values_but_not_resource_values() -> None:
    anything = policy("string_attribute", key="k", values=[".*"], enabled_regex_matching=True)
    assert decide(anything, view(attributes={"k": ""})) is NOT_SAMPLED
    assert decide(anything, view(attributes={"k": 5})) is NOT_SAMPLED
    assert decide(anything, view(attributes={"k": True})) is NOT_SAMPLED
    assert decide(anything, view(resource={"k": ""})) is SAMPLED
    assert decide(anything, view(resource={"k": 5})) is SAMPLED  # reads as "", matches .*
    assert decide(anything, view()) is NOT_SAMPLED


def test_string_invert_match_samples_iff_nothing_matches_anywhere() -> None:
    inverted = policy("string_attribute", key="k", values=["bad"], invert_match=True)
    assert decide(inverted, view()) is SAMPLED  # missing key
    assert decide(inverted, view(attributes={"k": "good"})) is SAMPLED
    assert decide(inverted, view(attributes={"k": "bad"})) is NOT_SAMPLED
    assert decide(inverted, view(resource={"k": "bad"}, attributes={"k": "good"})) is NOT_SAMPLED
    spans = (view(span_id=1, attributes={"k": "good"}), view(span_id=2, attributes={"k": "bad"}))
    assert decide(inverted, *spans) is NOT_SAMPLED


def test_string_invert_regex_keeps_the_empty_span_value_guard() -> None:
    inverted = policy(
        "string_attribute", key="k", values=[".*"], enabled_regex_matching=True, invert_match=True
    )
    assert decide(inverted, view(attributes={"k": ""})) is SAMPLED
    assert decide(inverted, view(resource={"k": ""})) is NOT_SAMPLED


@pytest.mark.parametrize(("pattern", "value"), [(r"^\d+$", "\u0663"), ("^ok$", "ok\n")])
def test_string_regex_follows_re2_semantics(pattern: str, value: str) -> None:
    regex = policy("string_attribute", key="k", values=[pattern], enabled_regex_matching=True)
    assert decide(regex, view(attributes={"k": value})) is NOT_SAMPLED


def test_bad_regex_is_a_config_error_naming_the_policy() -> None:
    bad = policy("string_attribute", key="k", values=["(unclosed"], enabled_regex_matching=True)
    with pytest.raises(SamplingConfigError) as raised:
        config(bad)
    assert "tail_sampling.policies[0].values" in str(raised.value)
    assert "regex" in str(raised.value)
    # without regex matching the same value is just a literal
    config(policy("string_attribute", key="k", values=["(unclosed"]))


def test_regex_outside_re2_is_a_config_error() -> None:
    lookahead = policy("string_attribute", key="k", values=["a(?=b)"], enabled_regex_matching=True)
    with pytest.raises(SamplingConfigError):
        config(lookahead)
