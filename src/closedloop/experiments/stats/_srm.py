"""Sample ratio mismatch: are the units per arm what the configured shares predict?

A mismatch means assignment or logging is broken (a version that crashes for some users,
a bot filter on one arm...), and then no metric comparison can be trusted; it is checked
before any verdict (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online
Controlled Experiments", KDD). Pearson's chi-square goodness of fit; the industry
threshold p < 0.001 keeps false alarms rare when every experiment is checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._scipy import stats

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SampleRatioCheck:
    """Observed and expected units per arm, the chi-square p-value, and the flag."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    shares: tuple[float, ...]
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold


def sample_ratio_mismatch(
    observed: Sequence[int], shares: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Chi-square test of ``observed`` units per arm against the configured ``shares``
    (any positive weights, e.g. (50, 50) or (0.8, 0.2); normalised to sum to 1)."""
    counts = tuple(check.count(f"observed[{i}]", value) for i, value in enumerate(observed))
    if len(counts) < 2 or len(counts) != len(shares):
        raise check.StatsInputError(
            f"observed has {len(counts)} arm(s) and shares {len(shares)}: pass one share per "
            "arm, at least two arms."
        )
    weights = tuple(check.positive(f"shares[{i}]", share) for i, share in enumerate(shares))
    total = sum(counts)
    if total == 0:
        raise check.StatsInputError("observed: every arm has 0 units; wait for traffic.")
    normalised = tuple(weight / sum(weights) for weight in weights)
    expected = tuple(total * share for share in normalised)
    result = stats.chisquare(counts, expected)
    return SampleRatioCheck(
        counts, expected, normalised, float(result.pvalue), check.alpha(threshold, "threshold")
    )
