"""Costs match genai-prices exactly, including models with tiered prices."""

from __future__ import annotations

import datetime

import pytest
from genai_prices import Usage, calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop._cost import CostCalculator, TokenUsage

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "o3-mini"),
    ("openai", "text-embedding-3-small"),
    ("google", "gemini-2.5-pro"),
    ("anthropic", "claude-sonnet-4-5"),
]
# Prices change over time: every comparison is made at one fixed moment.
PRICED_AT = datetime.datetime(2025, 9, 1, tzinfo=datetime.timezone.utc)
calculator = CostCalculator(clock=lambda: PRICED_AT)


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    input_tokens=st.integers(0, 400_000),
    output_tokens=st.integers(0, 50_000),
    cached_share=st.floats(0, 1),
)
def test_cost_equals_genai_prices(model, input_tokens, output_tokens, cached_share):
    provider, name = model
    cached = int(input_tokens * cached_share)
    expected = calc_price(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached),
        name,
        provider_id=provider,
        genai_request_timestamp=PRICED_AT,
    ).total_price
    cost = calculator.cost_usd(provider, name, TokenUsage(input_tokens, output_tokens, cached))
    assert cost == pytest.approx(float(expected), rel=1e-9, abs=1e-15)


def genai_prices_cost(provider: str, model: str, usage: TokenUsage) -> float:
    return float(
        calc_price(
            Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
            model,
            provider_id=provider,
            genai_request_timestamp=PRICED_AT,
        ).total_price
    )


def test_tiered_prices_keep_the_full_calculation():
    """Above 200k input tokens gemini-2.5-pro costs more per token: a per-token rate taken
    from small calls would be wrong there; the full calculation is not."""
    small, large = TokenUsage(1_000, 10, 0), TokenUsage(300_000, 10, 0)
    for usage in (small, large):
        expected = genai_prices_cost("google", "gemini-2.5-pro", usage)
        assert calculator.cost_usd("google", "gemini-2.5-pro", usage) == pytest.approx(
            expected, rel=1e-9
        )
    per_token = {
        usage.input_tokens: genai_prices_cost("google", "gemini-2.5-pro", usage)
        / usage.input_tokens
        for usage in (small, large)
    }
    assert per_token[300_000] > per_token[1_000]  # the tier this test is about


def test_catalogue_prices_are_those_in_force_at_the_clock():
    """claude-opus-4-6's price changed on 2026-03-13: each clock gets its own day's."""
    usage = TokenUsage(1_000_000, 1_000_000, 0)
    costs = []
    for day in (datetime.date(2026, 1, 1), datetime.date(2026, 6, 1)):
        moment = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
        priced = CostCalculator(clock=lambda moment=moment: moment)
        expected = calc_price(
            Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
            "claude-opus-4-6",
            provider_id="anthropic",
            genai_request_timestamp=moment,
        ).total_price
        cost = priced.cost_usd("anthropic", "claude-opus-4-6", usage)
        assert cost == pytest.approx(float(expected))
        costs.append(cost)
    assert costs[0] != costs[1]


def test_unknown_model_costs_none():
    assert CostCalculator().cost_usd("openai", "no-such-model-xyz", TokenUsage(5, 5, 0)) is None


def test_override_beats_the_catalogue():
    custom = CostCalculator({"gpt-4o-mini": {"input_per_mtok": 10, "output_per_mtok": 20}})
    assert custom.cost_usd("openai", "gpt-4o-mini", TokenUsage(1_000_000, 1_000_000, 0)) == 30
