"""CUPED: subtract from each unit's value the part its pre-experiment value predicts.

Randomisation makes the pre-experiment covariate independent of the arm, so the adjusted
difference stays unbiased while its variance shrinks by the squared correlation between
covariate and outcome (Deng, Xu, Kohavi & Walker 2013, WSDM). One θ is pooled over both
arms (within-arm covariances), as GrowthBook, Statsig and Eppo do."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Adjusted:
    """Each arm's adjusted per-unit values, how far each arm's estimate moves (subtract
    the shift), θ, and the share of the difference's variance removed."""

    baseline: Array
    candidate: Array
    baseline_shift: float
    candidate_shift: float
    theta: float
    variance_reduction: float


def cuped(
    baseline: Array, baseline_covariate: Array, candidate: Array, candidate_covariate: Array
) -> Adjusted | None:
    """The adjustment, or None when the covariate does not vary within the arms (no unit
    has pre-experiment data, say): then there is nothing to adjust by."""
    centred_u = [u - u.mean() for u in (baseline_covariate, candidate_covariate)]
    variance = sum(float(np.dot(u, u)) for u in centred_u)
    if variance == 0:
        return None
    covariance = sum(
        float(np.dot(y - y.mean(), u))
        for y, u in zip((baseline, candidate), centred_u, strict=True)
    )
    theta = covariance / variance
    grand_mean = float(np.concatenate((baseline_covariate, candidate_covariate)).mean())
    adjusted_a = baseline - theta * (baseline_covariate - grand_mean)
    adjusted_b = candidate - theta * (candidate_covariate - grand_mean)
    before = baseline.var(ddof=1) / baseline.size + candidate.var(ddof=1) / candidate.size
    after = adjusted_a.var(ddof=1) / adjusted_a.size + adjusted_b.var(ddof=1) / adjusted_b.size
    return Adjusted(
        baseline=adjusted_a,
        candidate=adjusted_b,
        baseline_shift=theta * (float(baseline_covariate.mean()) - grand_mean),
        candidate_shift=theta * (float(candidate_covariate.mean()) - grand_mean),
        theta=theta,
        variance_reduction=float(1 - after / before) if before > 0 else 0.0,
    )
