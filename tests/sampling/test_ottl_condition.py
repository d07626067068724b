"""ottl_condition and the OTTL subset it parses: OR semantics, OTTL's comparison rules,
unsupported conditions refused at load."""

from __future__ import annotations

import re
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

from closedloop.sampling import Decision, SamplingConfigError, SpanView

from .support import config, decide, policy, sdk_provider, view

SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED


def ottl(span: list[str] | None = None, spanevent: list[str] | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {"error_mode": "ignore"}
    if span:
        section["span"] = span
    if spanevent:
        section["spanevent"] = spanevent
    return policy("ottl_condition", **section)


def test_ottl_span_conditions_are_or_ed() -> None:
    spec = ottl(span=['name == "a"', 'attributes["k"] == "v"'])
    assert decide(spec, view(name="b", attributes={"k": "v"})) is SAMPLED
    assert decide(spec, view(name="a")) is SAMPLED
    assert decide(spec, view(name="b")) is NOT_SAMPLED
    assert decide(spec, view(span_id=1, name="x"), view(span_id=2, name="a")) is SAMPLED


def test_ottl_spanevent_conditions_are_evaluated_per_event() -> None:
    spec = ottl(spanevent=['name == "exception" and attributes["code"] == 1'])
    split = view(events=[("exception", {"code": 2}), ("other", {"code": 1})])
    assert decide(spec, split) is NOT_SAMPLED
    assert decide(spec, view(events=[("other", {}), ("exception", {"code": 1})])) is SAMPLED
    assert decide(spec, view(attributes={"code": 1}, name="exception")) is NOT_SAMPLED


def test_ottl_spanevent_can_read_the_span_and_resource() -> None:
    spec = ottl(spanevent=['span.name == "llm" and resource.attributes["env"] == "prod"'])
    assert decide(spec, view(name="llm", resource={"env": "prod"}, events=[("e", {})])) is SAMPLED
    assert decide(spec, view(name="llm", resource={"env": "prod"})) is NOT_SAMPLED  # no events


def test_ottl_span_and_spanevent_conditions_together() -> None:
    spec = ottl(span=['name == "a"'], spanevent=['name == "boom"'])
    assert decide(spec, view(name="z", events=[("boom", {})])) is SAMPLED
    assert decide(spec, view(name="a")) is SAMPLED
    assert decide(spec, view(name="z", events=[("fine", {})])) is NOT_SAMPLED


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
    assert decide(ottl(span=[condition]), view(attributes=attributes)) is (
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
        assert decide(ottl(span=[condition]), *spans) is SAMPLED, condition
    for condition in misses:
        assert decide(ottl(span=[condition]), *spans) is NOT_SAMPLED, condition


@pytest.mark.parametrize(
    ("literal", "kind"),
    [
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_SERVER", 2),
        ("SPAN_KIND_CLIENT", 3),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ],
)
def test_ottl_span_kind_enums_are_otlp_numbers(literal: str, kind: int) -> None:
    assert decide(ottl(span=[f"kind == {literal}"]), view(kind=kind)) is SAMPLED
    assert decide(ottl(span=[f"kind == {literal}"]), view(kind=kind + 1)) is NOT_SAMPLED


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
    assert decide(ottl(span=['name == "café"']), view(name="café")) is SAMPLED


@pytest.mark.parametrize(
    ("value", "pattern"),
    [(503, "^503$"), (True, "^true$"), (0.1, r"^0\.1$"), (1e21, "^1000000000000000000000$")],
)
def test_ottl_is_match_converts_non_string_targets_as_go_does(value: Any, pattern: str) -> None:
    condition = f'IsMatch(attributes["v"], "{pattern}")'
    assert decide(ottl(span=[condition]), view(attributes={"v": value})) is SAMPLED
