"""Means of per-unit values (rating, edit ratio, latency, cost per call): Welch's t.

Assumptions: units independent; each arm's mean roughly normal (the central limit theorem
covers skewed values such as latency and cost from a few dozen units on); variances may
differ between arms (Welch-Satterthwaite degrees of freedom)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy.typing as npt

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._results import (
    ArmEstimate,
    Comparison,
    Interval,
    relative_lift,
)
from closedloop.experiments.stats._scipy import stats

METHOD = "Welch's t"


def welch_test(
    baseline: Sequence[float] | npt.ArrayLike,
    candidate: Sequence[float] | npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> Comparison:
    """Candidate's mean against baseline's: each arm's t interval, Welch's t interval for
    the difference and its two-sided p-value (NaN, as the interval, when both arms are
    constant). Each value is one unit's."""
    check.alpha(alpha)
    a = check.sample("baseline", baseline)
    b = check.sample("candidate", candidate)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    var_a, var_b = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(var_a + var_b)
    difference = mean_b - mean_a
    if se == 0:  # both arms constant: no spread to test against, so no test
        p_value, half = math.nan, math.nan
    else:
        df = (var_a + var_b) ** 2 / (var_a**2 / (a.size - 1) + var_b**2 / (b.size - 1))
        p_value = float(2 * stats.t.sf(abs(difference) / se, df))
        half = float(stats.t.isf(alpha / 2, df)) * se
    return Comparison(
        baseline=_arm(mean_a, var_a, a.size, alpha),
        candidate=_arm(mean_b, var_b, b.size, alpha),
        difference=difference,
        interval=Interval(difference - half, difference + half, 1 - alpha, METHOD),
        relative_lift=relative_lift(difference, mean_a),
        p_value=p_value,
        test="Welch's t-test",
        standard_error=se,
    )


def _arm(mean: float, variance_of_mean: float, n: int, alpha: float) -> ArmEstimate:
    half = float(stats.t.isf(alpha / 2, n - 1)) * math.sqrt(variance_of_mean)
    return ArmEstimate(mean, Interval(mean - half, mean + half, 1 - alpha, "Student's t"), n)
