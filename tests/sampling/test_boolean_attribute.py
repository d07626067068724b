"""boolean_attribute: non-bools read as false (pdata's Value.Bool()), a missing key never."""

from __future__ import annotations

from closedloop.sampling import Decision

from .support import decide, policy, view

SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED


def test_boolean_attribute_reads_non_bools_as_false() -> None:
    true = policy("boolean_attribute", key="b", value=True)
    false = policy("boolean_attribute", key="b", value=False)
    assert decide(true, view(attributes={"b": True})) is SAMPLED
    assert decide(true, view(resource={"b": True})) is SAMPLED
    assert decide(true, view(attributes={"b": "true"})) is NOT_SAMPLED
    assert decide(true, view(attributes={"b": 1})) is NOT_SAMPLED
    assert decide(false, view(attributes={"b": "true"})) is SAMPLED
    assert decide(false, view(attributes={"b": False})) is SAMPLED
    assert decide(false, view()) is NOT_SAMPLED  # missing key is not false


def test_boolean_invert_match() -> None:
    inverted = policy("boolean_attribute", key="b", value=True, invert_match=True)
    assert decide(inverted, view(attributes={"b": True})) is NOT_SAMPLED
    assert decide(inverted, view(attributes={"b": False})) is SAMPLED
    assert decide(inverted, view()) is SAMPLED
