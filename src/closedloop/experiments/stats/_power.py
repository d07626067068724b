"""Power: how many units each arm needs to detect a given difference.

Two-sided tests at level ``alpha``; normal approximations. Plan with these before an
experiment; ``compare`` also uses them to say how many more units an inconclusive one
needs."""

from __future__ import annotations

import math

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._scipy import stats


def _quantiles(alpha: float, power: float) -> tuple[float, float]:
    check.alpha(alpha)
    check.alpha(power, "power")
    return float(stats.norm.isf(alpha / 2)), float(stats.norm.isf(1 - power))


def units_for_proportions(
    baseline_rate: float, candidate_rate: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm for the two-proportion z-test to detect ``baseline_rate`` →
    ``candidate_rate`` with probability ``power`` (Fleiss, Levin & Paik 2003,
    "Statistical Methods for Rates and Proportions", eq. 4.14, without continuity
    correction). Equal arms."""
    z_alpha, z_beta = _quantiles(alpha, power)
    for name, rate in (("baseline_rate", baseline_rate), ("candidate_rate", candidate_rate)):
        if not (isinstance(rate, (int, float)) and 0 < rate < 1):
            raise check.StatsInputError(f"{name}={rate!r}: pass a rate between 0 and 1.")
    if baseline_rate == candidate_rate:
        raise check.StatsInputError(
            "candidate_rate equals baseline_rate: pass the rate you want to detect, "
            "different from the baseline's."
        )
    p1, p2 = float(baseline_rate), float(candidate_rate)
    mean = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(root**2 / (p2 - p1) ** 2)


def units_for_means(
    sd: float, difference: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm for a t-test on means to detect ``difference`` when each unit's value
    has standard deviation ``sd`` in both arms: 2 (sd (z_alpha/2 + z_beta) / difference)^2,
    plus z_alpha/2^2 / 4 for the t distribution's heavier tails (Guenther 1981, "Sample
    size formulas for normal theory t tests", The American Statistician 35:243). Equal
    arms."""
    z_alpha, z_beta = _quantiles(alpha, power)
    check.positive("sd", sd)
    if not (isinstance(difference, (int, float)) and math.isfinite(difference)) or not difference:
        raise check.StatsInputError(
            f"difference={difference!r}: pass the non-zero difference you want to detect."
        )
    return math.ceil(2 * (sd * (z_alpha + z_beta) / difference) ** 2 + z_alpha**2 / 4)
