"""Costs match genai-prices exactly, including models with tiered prices."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.cost import CostCalculator, TokenUsage

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "o3-mini"),
    ("openai", "text-embedding-3-small"),
    ("google", "gemini-2.5-pro"),
    ("anthropic", "claude-sonnet-4-5"),
]
calculator = CostCalculator()


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
    ).total_price
    cost = calculator.cost_usd(provider, name, TokenUsage(input_tokens, output_tokens, cached))
    assert cost == pytest.approx(float(expected), rel=1e-9, abs=1e-15)


def test_tiered_prices_keep_the_full_calculation():
    calculator.cost_usd("google", "gemini-2.5-pro", TokenUsage(10, 10, 0))
    assert type(calculator._cache[("google", "gemini-2.5-pro")]).__name__ == "ModelPrice"
    calculator.cost_usd("openai", "gpt-4o-mini", TokenUsage(10, 10, 0))
    assert type(calculator._cache[("openai", "gpt-4o-mini")]).__name__ == "_LinearRates"


def test_unknown_model_costs_none():
    assert CostCalculator().cost_usd("openai", "no-such-model-xyz", TokenUsage(5, 5, 0)) is None


def test_override_beats_the_catalogue():
    custom = CostCalculator({"gpt-4o-mini": {"input_per_mtok": 10, "output_per_mtok": 20}})
    assert custom.cost_usd("openai", "gpt-4o-mini", TokenUsage(1_000_000, 1_000_000, 0)) == 30
