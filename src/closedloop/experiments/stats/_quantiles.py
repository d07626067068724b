"""A quantile's difference (p95 latency): a seeded cluster bootstrap, percentile intervals.

Quantiles have no simple standard error, and calls of one user are not independent, so
each resample draws whole units (users, or calls when the call is the unit) with
replacement and recomputes each arm's quantile on their calls (Efron & Tibshirani 1993,
"An Introduction to the Bootstrap", percentile method; resampling clusters as in Field &
Welsh 2007). Assumptions: units independent; enough units (hundreds) that the quantile's
resampling distribution is smooth. The seed makes the interval reproducible."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._results import (
    ArmEstimate,
    Comparison,
    Interval,
    relative_lift,
)

RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
_BATCH_CELLS = 4_000_000
"""Resamples run in batches of at most this many (resample, value) cells: bounded memory."""

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
    distribution function. The p-value is twice the share of resampled differences on the
    far side of 0 (at least 1/(resamples + 1))."""
    check.alpha(alpha)
    if not (isinstance(quantile, float) and 0 < quantile < 1):
        raise check.StatsInputError(f"quantile={quantile!r}: pass a number between 0 and 1.")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise check.StatsInputError(f"resamples={resamples!r}: pass a whole number >= 100.")
    rng = np.random.default_rng(seed)
    a = check.sample("baseline", baseline)
    b = check.sample("candidate", candidate)
    replicates = []
    for name, values, units in (("baseline", a, baseline_units), ("candidate", b, candidate_units)):
        replicates.append(
            _replicates(values, _unit_index(name, units, values.size), quantile, resamples, rng)
        )
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


def _unit_index(
    name: str, units: Sequence[int] | npt.ArrayLike | None, size: int
) -> npt.NDArray[np.intp]:
    """Each value's unit as 0..U-1."""
    if units is None:
        return np.arange(size)
    labels = np.asarray(units)
    if labels.shape != (size,):
        raise check.StatsInputError(
            f"{name}_units has shape {labels.shape}: pass one unit label per value ({size})."
        )
    return np.unique(labels, return_inverse=True)[1].astype(np.intp)


def _count_units(units: Sequence[int] | npt.ArrayLike | None, size: int) -> int:
    return size if units is None else int(np.unique(np.asarray(units)).size)


def _replicates(
    values: Array,
    unit: npt.NDArray[np.intp],
    quantile: float,
    resamples: int,
    rng: np.random.Generator,
) -> Array:
    """The quantile of each resample: units drawn with replacement weight their values."""
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_unit = values[order], unit[order]
    units = int(sorted_unit.max()) + 1
    batch = max(1, _BATCH_CELLS // max(values.size, units))
    found = np.empty(resamples)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        draws = rng.multinomial(units, np.full(units, 1 / units), size=size)
        weights = np.cumsum(draws[:, sorted_unit], axis=1)
        targets = quantile * weights[:, -1]
        found[start : start + size] = sorted_values[np.argmax(weights >= targets[:, None], axis=1)]
    return found


def _percentile(replicates: Array, alpha: float, method: str) -> Interval:
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), 1 - alpha, method)
