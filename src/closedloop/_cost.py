"""Cost of an LLM call in USD from provider-reported usage, priced by ``genai-prices``.

Prices are looked up once per (provider, model) and cached; an unknown model yields
``None`` (no cost attribute, never a misleading 0) and one debug log per model. Users can
override or add prices per model in ``instrument(prices=...)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelPrice

logger = logging.getLogger("closedloop._cost")

_PRICE_FIELDS = {
    "input_per_mtok": "input_mtok",
    "output_per_mtok": "output_mtok",
    "cached_input_per_mtok": "cache_read_mtok",
}


@dataclass(frozen=True)
class TokenUsage:
    """Provider-reported usage; ``input_tokens`` includes ``cached_input_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0


def _decimal(model: str, field: str, value: object) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0:
        raise ValueError(
            f"prices[{model!r}][{field!r}] must be a finite non-negative number of USD per "
            f"million tokens, got {value!r}."
        )
    return number


def _model_price(model: str, spec: Mapping[str, object]) -> ModelPrice:
    unknown = set(spec) - set(_PRICE_FIELDS)
    if unknown:
        raise ValueError(
            f"prices[{model!r}] has unknown keys {sorted(unknown)}; "
            f"use {sorted(_PRICE_FIELDS)} (USD per million tokens)."
        )
    if "input_per_mtok" not in spec or "output_per_mtok" not in spec:
        raise ValueError(
            f"prices[{model!r}] needs both 'input_per_mtok' and 'output_per_mtok' "
            "(USD per million tokens)."
        )
    return ModelPrice(
        **{_PRICE_FIELDS[key]: _decimal(model, key, value) for key, value in spec.items()}
    )


@dataclass(frozen=True)
class _LinearRates:
    """USD per token, derived from ``genai-prices`` and verified linear."""

    input: float
    output: float
    cached_discount: float

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            - usage.cached_input_tokens * self.cached_discount
        )


def _calc(price: ModelPrice, usage: TokenUsage) -> Decimal:
    return price.calc_price(
        Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cached_input_tokens,
        )
    )["total_price"]


def _linear_rates(price: ModelPrice) -> _LinearRates | None:
    """Per-token rates if ``price`` is linear in each token kind, else None."""
    million = 1_000_000
    rate_in = _calc(price, TokenUsage(input_tokens=million)) / million
    rate_out = _calc(price, TokenUsage(output_tokens=million)) / million
    cached = _calc(price, TokenUsage(input_tokens=million, cached_input_tokens=million)) / million
    rates = _LinearRates(float(rate_in), float(rate_out), float(rate_in - cached))
    probe = TokenUsage(input_tokens=3_000_017, output_tokens=5_000_011, cached_input_tokens=999_983)
    exact = float(_calc(price, probe))
    if abs(rates.cost(probe) - exact) > 1e-9 * max(1.0, exact):
        return None
    return rates


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CostCalculator:
    """Turns usage into USD; thread-safe, with per-model price lookups cached.

    Catalogue prices are those in force at ``clock()`` when a model is first priced
    (prices change over time; tests pin the clock).
    """

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, object]] | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._overrides = {
            model.lower(): _model_price(model, spec) for model, spec in (overrides or {}).items()
        }
        self._clock = clock
        self._cache: dict[tuple[str, str], _LinearRates | ModelPrice | None] = {}
        self._lock = threading.Lock()

    def cost_usd(self, provider: str, model: str, usage: TokenUsage) -> float | None:
        """USD cost, or None when the model's price is unknown."""
        price = self._price(provider, model)
        if price is None:
            return None
        if isinstance(price, _LinearRates):
            return price.cost(usage)
        return float(_calc(price, usage))

    def _price(self, provider: str, model: str) -> _LinearRates | ModelPrice | None:
        key = (provider, model.lower())
        try:
            return self._cache[key]
        except KeyError:
            pass
        price = self._overrides.get(key[1]) or self._lookup(provider, model)
        priced = None if price is None else (_linear_rates(price) or price)
        with self._lock:
            self._cache[key] = priced
        return priced

    def _lookup(self, provider: str, model: str) -> ModelPrice | None:
        try:
            _, info = get_snapshot().find_provider_model(model, None, provider, None)
        except LookupError:
            logger.debug(
                "closedloop: no price known for %s model %r; cost not recorded", provider, model
            )
            return None
        return info.get_prices(self._clock())
