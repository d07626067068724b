"""A quantile's difference (p95 latency): a seeded cluster bootstrap, percentile intervals.

Quantiles have no simple standard error, and calls of one user are not independent, so
each resample draws whole units (users, or calls when the call is the unit) with
replacement and recomputes each arm's quantile on their calls (Efron & Tibshirani 1993,
"An Introduction to the Bootstrap", percentile method; resampling clusters as in Field &
Welsh 2007). Assumptions: units independent; enough units (hundreds) that the quantile's
resampling distribution is smooth. The seed makes the interval reproducible.

When every call is its own unit, a resample's quantile is an order statistic of the sample
whose position has a known binomial distribution (Efron 1979, section 3; Maritz & Jarrett
1978): it is drawn from that distribution instead of resampling every call, which gives the
same bootstrap distribution at a cost independent of the number of calls."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._results import (
    ArmEstimate,
    Comparison,
    Interval,
    relative_lift,
)
from closedloop.experiments.stats._scipy import stats

RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
_BATCH_CELLS = 4_000_000
"""Resamples run in batches of at most this many (resample, value) cells: bounded memory."""
_WINDOW_SES = 8.0
"""Half-width of the window of sorted positions first searched for a resampled quantile,
in standard errors of its rank: wide enough that a resample rarely needs the full sum."""

Array = npt.NDArray[np.float64]


def bootstrap_quantile_difference(
    baseline: Sequence[float] | npt.ArrayLike,
    candidate: Sequence[float] | npt.ArrayLike,
    *,
    quantile: float = 0.95,
    baseline_units: Sequence[int] | npt.ArrayLike | None = None,
    candidate_units: Sequence[int] | npt.ArrayLike | None = None,
    alpha: float = 0.05,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Candidate's ``quantile`` against baseline's. Values are per call; ``*_units`` give
    each value's unit (any integer label) to resample whole units; without them every value
    is its own unit. Point estimates interpolate linearly (numpy's default, as
    ``prompt_version_metrics``); resampled quantiles take the inverse of the weighted
    distribution function. Without units, each resampled quantile's sorted position is
    drawn from its exact (binomial) distribution rather than by resampling the values: the
    same distribution, other random numbers. The p-value is twice the share of
    resampled differences on the far side of 0 (at least 1/(resamples + 1))."""
    check.alpha(alpha)
    if not (isinstance(quantile, float) and 0 < quantile < 1):
        raise check.StatsInputError(f"quantile={quantile!r}: pass a number between 0 and 1.")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise check.StatsInputError(f"resamples={resamples!r}: pass a whole number >= 100.")
    rng = np.random.default_rng(seed)
    a = check.sample("baseline", baseline)
    b = check.sample("candidate", candidate)
    replicates = [
        _arm_replicates(name, values, units, quantile=quantile, resamples=resamples, rng=rng)
        for name, values, units in (
            ("baseline", a, baseline_units),
            ("candidate", b, candidate_units),
        )
    ]
    estimates = [float(np.quantile(values, quantile)) for values in (a, b)]
    differences = replicates[1] - replicates[0]
    difference = estimates[1] - estimates[0]
    method = f"cluster bootstrap, percentile, {resamples} resamples, seed {seed}"
    below = int(np.count_nonzero(differences <= 0))
    above = int(np.count_nonzero(differences >= 0))
    p_value = min(1.0, 2 * (min(below, above) + 1) / (resamples + 1))
    return Comparison(
        baseline=ArmEstimate(
            estimates[0],
            _percentile(replicates[0], alpha, method),
            _count_units(baseline_units, a.size),
        ),
        candidate=ArmEstimate(
            estimates[1],
            _percentile(replicates[1], alpha, method),
            _count_units(candidate_units, b.size),
        ),
        difference=difference,
        interval=_percentile(differences, alpha, method),
        relative_lift=relative_lift(difference, estimates[0]),
        p_value=p_value,
        test="bootstrap test",
        standard_error=float(differences.std(ddof=1)),
    )


def _unit_index(name: str, units: Sequence[int] | npt.ArrayLike, size: int) -> npt.NDArray[np.intp]:
    """Each value's unit as 0..U-1."""
    labels = np.asarray(units)
    if labels.shape != (size,):
        raise check.StatsInputError(
            f"{name}_units has shape {labels.shape}: pass one unit label per value ({size})."
        )
    return np.unique(labels, return_inverse=True)[1].astype(np.intp)


def _count_units(units: Sequence[int] | npt.ArrayLike | None, size: int) -> int:
    return size if units is None else int(np.unique(np.asarray(units)).size)


def _arm_replicates(
    name: str,
    values: Array,
    units: Sequence[int] | npt.ArrayLike | None,
    *,
    quantile: float,
    resamples: int,
    rng: np.random.Generator,
) -> Array:
    """One arm's resampled quantiles: without units, from the order statistic's exact
    distribution (as fast for 100k calls as for 100); with them, by resampling units."""
    if units is None:
        return _iid_replicates(values, quantile, resamples, rng)
    unit = _unit_index(name, units, values.size)
    return _cluster_replicates(values, unit, quantile, resamples, rng)


def _iid_replicates(
    values: Array, quantile: float, resamples: int, rng: np.random.Generator
) -> Array:
    """The quantile of each resample of the values drawn one by one with replacement.

    Resampling draws n values (n = the sample's size), and the resample's quantile is the
    sorted value at position J, the first whose count of draws at or below it reaches the
    target rank (see ``_cluster_replicates``). That count is Binomial(n, (j + 1) / n), so
    P(J <= j) is a binomial tail (``_iid_cdf``): J is drawn by inverting it at a uniform."""
    positions = _iid_positions(values.size, quantile, rng.random(resamples))
    return np.sort(values)[positions]


def _iid_rank(size: int, quantile: float) -> int:
    """Draws a resample's quantile needs at or below it: the whole counts of
    ``_cluster_replicates`` reach the float target ``quantile * total`` at its ceiling."""
    return math.ceil(quantile * size)


def _iid_cdf(positions: npt.NDArray[np.intp], size: int, quantile: float) -> Array:
    """P(J <= j) for each position j: at least the target rank of the ``size`` draws land
    on the j + 1 lowest positions."""
    tail = stats.binom.sf(_iid_rank(size, quantile) - 1, size, (positions + 1) / size)
    return np.asarray(tail, dtype=np.float64)


def _iid_positions(size: int, quantile: float, uniforms: Array) -> npt.NDArray[np.intp]:
    """For each uniform u in [0, 1), the least position j with u < P(J <= j) (so J has
    exactly that distribution), by a binary search over positions: about log2(size)
    binomial tails per resample."""
    lo = np.zeros(uniforms.size, np.intp)
    hi = np.full(uniforms.size, size - 1, np.intp)
    while (open_ := np.flatnonzero(lo < hi)).size:
        mid = (lo[open_] + hi[open_]) // 2
        below = uniforms[open_] < _iid_cdf(mid, size, quantile)
        hi[open_] = np.where(below, mid, hi[open_])
        lo[open_] = np.where(below, lo[open_], mid + 1)
    return lo


def _cluster_replicates(
    values: Array,
    unit: npt.NDArray[np.intp],
    quantile: float,
    resamples: int,
    rng: np.random.Generator,
) -> Array:
    """The quantile of each resample: units drawn with replacement weight their values.

    Summing weights over every value costs resamples x values cells, yet each resample's
    quantile lands near the point quantile's rank; so only a window of sorted positions
    around it is summed (see ``_Window``). Resamples whose quantile falls outside the
    window are summed over every value, so each replicate is exactly the full sum's."""
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_unit = values[order], unit[order]
    units = int(sorted_unit.max()) + 1
    window = _window(sorted_unit, units, quantile)
    batch = max(1, _BATCH_CELLS // max(values.size, units))
    found = np.empty(resamples)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        draws = rng.multinomial(units, np.full(units, 1 / units), size=size)
        found[start : start + size] = sorted_values[window.positions(draws, sorted_unit, quantile)]
    return found


@dataclass(frozen=True)
class _Window:
    """Sorted positions ``[lo, hi)`` searched first for each resample's quantile.

    The weight below ``lo`` and the total weight are products of the draws with per-unit
    counts (a product over units, not values), so the cumulative sum runs over the window
    only, offset by the weight below it."""

    lo: int
    hi: int
    counts: npt.NDArray[np.int64]
    """Per unit (rows): its count of values, and its count of values below ``lo``."""
    unit: npt.NDArray[np.intp]
    """The unit of each position in the window."""

    @classmethod
    def spanning(cls, sorted_unit: npt.NDArray[np.intp], units: int, lo: int, hi: int) -> _Window:
        """The window ``[lo, hi)`` (at least one position) over values sorted by value."""
        counts = np.stack(
            [
                np.bincount(sorted_unit, minlength=units),
                np.bincount(sorted_unit[:lo], minlength=units),
            ],
            axis=1,
        ).astype(np.int64)
        return cls(lo, hi, counts, sorted_unit[lo:hi])

    def positions(
        self, draws: npt.NDArray[np.int64], sorted_unit: npt.NDArray[np.intp], quantile: float
    ) -> npt.NDArray[np.intp]:
        """Each resample's first sorted position whose cumulative weight reaches
        ``quantile`` of its total; resamples that reach it outside the window go in full."""
        totals, below = (draws @ self.counts).T
        targets = quantile * totals
        weights = below[:, None] + np.cumsum(draws[:, self.unit], axis=1)
        reached = weights >= targets[:, None]
        found: npt.NDArray[np.intp] = self.lo + np.argmax(reached, axis=1)
        missed = (targets <= below) | ~reached[:, -1]
        if missed.any():
            found[missed] = _full_positions(draws[missed], sorted_unit, quantile)
        return found


def _window(sorted_unit: npt.NDArray[np.intp], units: int, quantile: float) -> _Window:
    """``_WINDOW_SES`` standard errors of the resampled rank either side of the point
    quantile's. The share of weight below a rank is a ratio of unit totals; by the delta
    method its standard error, in positions, is sqrt(sum over units of (below - share *
    count)^2): sqrt(q(1 - q) values) when each value is a unit, wider when clustered."""
    size = sorted_unit.size
    rank = min(size - 1, int(quantile * size))
    counts = np.bincount(sorted_unit, minlength=units)
    below = np.bincount(sorted_unit[:rank], minlength=units)
    spread = float(np.sqrt(np.sum((below - rank / size * counts) ** 2)))
    half = math.ceil(_WINDOW_SES * spread) + 1
    return _Window.spanning(sorted_unit, units, max(0, rank - half), min(size, rank + half + 1))


def _full_positions(
    draws: npt.NDArray[np.int64], sorted_unit: npt.NDArray[np.intp], quantile: float
) -> npt.NDArray[np.intp]:
    """The cumulative sum over every value: exact wherever the quantile lands."""
    weights = np.cumsum(draws[:, sorted_unit], axis=1)
    targets = quantile * weights[:, -1]
    found: npt.NDArray[np.intp] = np.argmax(weights >= targets[:, None], axis=1)
    return found


def _percentile(replicates: Array, alpha: float, method: str) -> Interval:
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), 1 - alpha, method)
