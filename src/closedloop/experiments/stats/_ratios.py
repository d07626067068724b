"""Ratio metrics over units: Σ numerator / Σ denominator per arm, with delta-method
variance, and CUPED when each unit has a pre-experiment covariate.

When the user is the unit of randomisation and a user makes many calls, calls are not
independent; a per-call rate (reopened / with an outcome) or mean (latency / calls) is
then the ratio of two per-user sums, and its variance comes from the per-user pairs by
the delta method (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric
Analytics", KDD). It also gives cost per successful task (Σ cost / Σ successes) with
calls as units. Assumptions: units independent; enough units (hundreds) for the
normal approximation; the denominator's mean well away from 0."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._cuped import cuped
from closedloop.experiments.stats._results import (
    ArmEstimate,
    Comparison,
    Interval,
    relative_lift,
)
from closedloop.experiments.stats._scipy import stats

Values = Sequence[float] | npt.ArrayLike


def linearize(
    numerators: npt.NDArray[np.float64], denominators: npt.NDArray[np.float64], name: str
) -> tuple[float, npt.NDArray[np.float64]]:
    """The ratio Σy/Σn and each unit's influence z = (y - R·n) / mean(n): the ratio's
    error is, to first order, the mean of z."""
    mean_n = float(denominators.mean())
    if mean_n <= 0:
        raise check.StatsInputError(
            f"{name}: every denominator is 0 (no unit has data for this metric); "
            "pass units with a denominator > 0."
        )
    ratio = float(numerators.sum() / denominators.sum())
    return ratio, (numerators - ratio * denominators) / mean_n


def compare_ratios(
    baseline_numerators: Values,
    baseline_denominators: Values,
    candidate_numerators: Values,
    candidate_denominators: Values,
    *,
    baseline_covariate: Values | None = None,
    candidate_covariate: Values | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Candidate against baseline on Σy/Σn, one (y, n) pair per unit. With covariates (one
    pre-experiment value per unit, 0 for units without history), CUPED removes the part of
    the variance they explain (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity of
    Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM) and the result
    reports how much. Normal intervals and a two-sided z-test on the difference; no test
    (NaN p-value and interval) when the standard error is 0. For a rate with one trial
    per unit, or few events, ``compare_proportions`` is exact where this is not."""
    check.alpha(alpha)
    y_a = check.sample("baseline_numerators", baseline_numerators)
    n_a = check.sample("baseline_denominators", baseline_denominators)
    y_b = check.sample("candidate_numerators", candidate_numerators)
    n_b = check.sample("candidate_denominators", candidate_denominators)
    for name, y, n in (("baseline", y_a, n_a), ("candidate", y_b, n_b)):
        if y.size != n.size:
            raise check.StatsInputError(
                f"{name}_numerators has {y.size} values and {name}_denominators {n.size}: "
                "pass one (numerator, denominator) pair per unit."
            )
        if np.any(n < 0):
            raise check.StatsInputError(
                f"{name}_denominators holds negative values: denominators are counts, >= 0."
            )
    ratio_a, z_a = linearize(y_a, n_a, "baseline_denominators")
    ratio_b, z_b = linearize(y_b, n_b, "candidate_denominators")
    method = "delta method"
    reduction: float | None = None
    if (baseline_covariate is None) != (candidate_covariate is None):
        raise check.StatsInputError(
            "pass both baseline_covariate and candidate_covariate, or neither."
        )
    if baseline_covariate is not None and candidate_covariate is not None:
        u_a = check.sample("baseline_covariate", baseline_covariate)
        u_b = check.sample("candidate_covariate", candidate_covariate)
        if u_a.size != z_a.size or u_b.size != z_b.size:
            raise check.StatsInputError(
                "baseline_covariate and candidate_covariate need one value per unit of their "
                f"arm ({z_a.size} and {z_b.size}), got {u_a.size} and {u_b.size}."
            )
        adjusted = cuped(z_a, u_a, z_b, u_b)
        if adjusted is not None:
            z_a, z_b = adjusted.baseline, adjusted.candidate
            ratio_a -= adjusted.baseline_shift
            ratio_b -= adjusted.candidate_shift
            reduction = adjusted.variance_reduction
            method = "delta method + CUPED"
    se_a = math.sqrt(float(z_a.var(ddof=1)) / z_a.size)
    se_b = math.sqrt(float(z_b.var(ddof=1)) / z_b.size)
    se = math.hypot(se_a, se_b)
    z = float(stats.norm.isf(alpha / 2))
    difference = ratio_b - ratio_a
    if se == 0:  # every unit's value alike in both arms: no spread to test against
        p_value, interval = math.nan, Interval(math.nan, math.nan, 1 - alpha, method)
    else:
        p_value = float(2 * stats.norm.sf(abs(difference) / se))
        interval = _normal(difference, se, z, alpha, method)
    return Comparison(
        baseline=ArmEstimate(ratio_a, _normal(ratio_a, se_a, z, alpha, method), z_a.size),
        candidate=ArmEstimate(ratio_b, _normal(ratio_b, se_b, z, alpha, method), z_b.size),
        difference=difference,
        interval=interval,
        relative_lift=relative_lift(difference, ratio_a),
        p_value=p_value,
        test=f"z-test ({method})",
        standard_error=se,
        variance_reduction=reduction,
    )


def _normal(centre: float, se: float, z: float, alpha: float, method: str) -> Interval:
    return Interval(centre - z * se, centre + z * se, 1 - alpha, method)
