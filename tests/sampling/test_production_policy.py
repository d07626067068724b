"""The production policy (collector/otel-collector.yaml) on representative SDK traces."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.trace import Span, Status, StatusCode

from closedloop.feedback._recorder import SPAN_NAME
from closedloop.sampling import Decision, SamplerConfig, SpanView, TailSampler, load

from .support import (
    FEEDBACK_SPAN,
    PRODUCTION_CONFIG,
    recording_sampler,
    sampled_by_baseline,
    sdk_provider,
    unsampled_by_baseline,
    view,
)

SAMPLED, NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED
Build = Callable[[Span], None]


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


def production_decision(production: SamplerConfig, build: Build, trace_id: int) -> Decision:
    """Decide one SDK-built trace with the production policies through a TailSampler."""
    provider, exporter = sdk_provider(trace_ids=[trace_id], resource={"service.name": "app"})
    with provider.get_tracer("t").start_as_current_span("request") as root:
        build(root)
    spans = [SpanView.of(span) for span in exporter.get_finished_spans()]
    assert {span.trace_id for span in spans} == {trace_id}
    forwarded: list[SpanView] = []
    sampler = TailSampler(production, forwarded.extend)
    sampler.ingest(spans)
    assert [sampler.tick() for _ in range(production.decision_batches)] == [0] * 10
    assert sampler.tick() == 1  # decided on the 11th tick
    return SAMPLED if forwarded else NOT_SAMPLED


def _error(span: Span) -> None:
    span.set_status(Status(StatusCode.ERROR, "boom"))


def _feedback(kind: str | None = None) -> Build:
    """A span named closedloop.feedback (Contract 2), with a kind attribute when given."""

    def build(span: Span) -> None:
        span.update_name(FEEDBACK_SPAN)
        if kind is not None:
            span.set_attribute("closedloop.feedback.kind", kind)

    return build


def _kind_only(kind: str) -> Build:
    """A feedback kind attribute on a span that is not named closedloop.feedback."""
    return lambda span: span.set_attribute("closedloop.feedback.kind", kind)


def _new_user(value: bool | str) -> Build:
    return lambda span: span.set_attribute("closedloop.user.new", value)


def _plain(span: Span) -> None:
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
    production: SamplerConfig, build: Build, expected: Decision
) -> None:
    trace_id = unsampled_by_baseline(0x1234)
    assert production_decision(production, build, trace_id) is expected


def test_production_baseline_samples_plain_calls_by_trace_id(production: SamplerConfig) -> None:
    assert production_decision(production, _plain, sampled_by_baseline(0x1234)) is SAMPLED
    assert production_decision(production, _plain, unsampled_by_baseline(0x1234)) is NOT_SAMPLED


def test_production_late_feedback_follows_or_samples(production: SamplerConfig) -> None:
    sampler, forwarded = recording_sampler(production)
    kept, plain = sampled_by_baseline(0x99), unsampled_by_baseline(0x99)
    sampler.ingest([view(kept, span_id=1), view(plain, span_id=2)])
    sampler.drain()
    assert [span.span_id for span in forwarded] == [1]
    sampler.ingest([view(kept, span_id=3, name=FEEDBACK_SPAN)])
    sampler.ingest([view(plain, span_id=4, name=FEEDBACK_SPAN)])
    assert [span.span_id for span in forwarded] == [1, 3]
    # the cached not-sampled decision holds for the late feedback of the plain trace
    assert sampler.counts.late_spans == {"forwarded": 1, "discarded": 1}


def test_the_feedback_recorder_names_its_spans_as_the_policy_matches_them(
    production: SamplerConfig,
) -> None:
    """One rule everywhere: the span name the recorder writes is the one the policy keeps."""
    assert SPAN_NAME == FEEDBACK_SPAN
    assert production_decision(production, _feedback(), unsampled_by_baseline(0x4321)) is SAMPLED
