"""Rates: Wilson per arm, Newcombe's hybrid score interval for the difference, and the
two-proportion z-test, or Fisher's exact test when counts are small.

Assumptions: each unit is one independent Bernoulli trial (use these when the unit of
randomisation is the call, or each user contributes one outcome; per-user aggregates of
several calls go through ``compare_ratios``)."""

from __future__ import annotations

import math

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._results import (
    ArmEstimate,
    Comparison,
    Interval,
    relative_lift,
)
from closedloop.experiments.stats._scipy import stats

SMALL_EXPECTED_COUNT = 5
"""Cochran's rule: Fisher's exact test when any expected cell of the 2x2 table is below it."""


def _z(alpha: float) -> float:
    return float(stats.norm.isf(alpha / 2))


def wilson_interval(successes: int, trials: int, *, alpha: float = 0.05) -> Interval:
    """Wilson's score interval for one proportion (Wilson 1927; Newcombe 1998, method 3):
    keeps its coverage near nominal for small n and rates near 0 or 1, where the Wald
    interval fails, and never leaves [0, 1]."""
    x, n = check.successes("successes", successes, "trials", trials)
    z = _z(check.alpha(alpha))
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    low = 0.0 if x == 0 else max(0.0, centre - half)  # exactly, not centre - half's rounding
    high = 1.0 if x == n else min(1.0, centre + half)
    return Interval(low, high, 1 - alpha, "Wilson score")


def newcombe_interval(
    baseline_successes: int,
    baseline_trials: int,
    candidate_successes: int,
    candidate_trials: int,
    *,
    alpha: float = 0.05,
) -> Interval:
    """Newcombe's hybrid score interval (Newcombe 1998, "Interval estimation for the
    difference between independent proportions", method 10) for candidate - baseline:
    the two arms' Wilson limits combined, with good coverage where the Wald interval's is
    poor (small n, rates near 0 or 1)."""
    x1, n1 = check.successes(
        "baseline_successes", baseline_successes, "baseline_trials", baseline_trials
    )
    x2, n2 = check.successes(
        "candidate_successes", candidate_successes, "candidate_trials", candidate_trials
    )
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _limits(wilson_interval(x1, n1, alpha=alpha))
    l2, u2 = _limits(wilson_interval(x2, n2, alpha=alpha))
    difference = p2 - p1
    low = difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return Interval(low, high, 1 - alpha, "Newcombe hybrid score (method 10)")


def _limits(interval: Interval) -> tuple[float, float]:
    return interval.low, interval.high


def two_proportion_z_test(
    baseline_successes: int, baseline_trials: int, candidate_successes: int, candidate_trials: int
) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (equal to Pearson's chi-square
    test of the 2x2 table without continuity correction); 1.0 when both rates are 0 or 1."""
    x1, n1 = check.successes(
        "baseline_successes", baseline_successes, "baseline_trials", baseline_trials
    )
    x2, n2 = check.successes(
        "candidate_successes", candidate_successes, "candidate_trials", candidate_trials
    )
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return 1.0
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return float(2 * stats.norm.sf(abs(z)))


def fisher_exact_test(
    baseline_successes: int, baseline_trials: int, candidate_successes: int, candidate_trials: int
) -> float:
    """Two-sided p-value of Fisher's exact test on the 2x2 table (conditional on margins)."""
    x1, n1 = check.successes(
        "baseline_successes", baseline_successes, "baseline_trials", baseline_trials
    )
    x2, n2 = check.successes(
        "candidate_successes", candidate_successes, "candidate_trials", candidate_trials
    )
    result = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]])
    return float(result.pvalue)


def small_counts(
    baseline_successes: int, baseline_trials: int, candidate_successes: int, candidate_trials: int
) -> bool:
    """Whether any expected cell count under no difference is below ``SMALL_EXPECTED_COUNT``."""
    total = baseline_trials + candidate_trials
    successes = baseline_successes + candidate_successes
    expected = [
        trials * share / total
        for trials in (baseline_trials, candidate_trials)
        for share in (successes, total - successes)
    ]
    return min(expected) < SMALL_EXPECTED_COUNT


def compare_proportions(
    baseline_successes: int,
    baseline_trials: int,
    candidate_successes: int,
    candidate_trials: int,
    *,
    alpha: float = 0.05,
) -> Comparison:
    """Candidate against baseline on a rate: Wilson per arm, Newcombe for the difference,
    and the p-value of the z-test, or of Fisher's exact test when an expected cell count is
    below 5 (Cochran's rule). The standard error is the unpooled Wald one, for the
    sequential test and power only."""
    x1, n1 = check.successes(
        "baseline_successes", baseline_successes, "baseline_trials", baseline_trials
    )
    x2, n2 = check.successes(
        "candidate_successes", candidate_successes, "candidate_trials", candidate_trials
    )
    check.alpha(alpha)
    p1, p2 = x1 / n1, x2 / n2
    if small_counts(x1, n1, x2, n2):
        p_value, test = fisher_exact_test(x1, n1, x2, n2), "Fisher's exact test"
    else:
        p_value, test = two_proportion_z_test(x1, n1, x2, n2), "two-proportion z-test"
    return Comparison(
        baseline=ArmEstimate(p1, wilson_interval(x1, n1, alpha=alpha), n1),
        candidate=ArmEstimate(p2, wilson_interval(x2, n2, alpha=alpha), n2),
        difference=p2 - p1,
        interval=newcombe_interval(x1, n1, x2, n2, alpha=alpha),
        relative_lift=relative_lift(p2 - p1, p1),
        p_value=p_value,
        test=test,
        standard_error=math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2),
    )
