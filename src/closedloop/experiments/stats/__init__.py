"""Statistics for comparing a candidate prompt version with the baseline.

Rates (Wilson, Newcombe, z-test or Fisher), means (Welch), ratios of per-unit sums (delta
method, with CUPED), quantiles (cluster bootstrap), sample ratio mismatch, power, an
always-valid sequential test, and Holm's correction. Differences are candidate -
baseline. Bad input raises ``StatsInputError`` naming the argument and the fix.
"""

from closedloop.experiments.stats._checks import StatsInputError
from closedloop.experiments.stats._cuped import Adjusted, cuped
from closedloop.experiments.stats._means import welch_test
from closedloop.experiments.stats._multiple import holm
from closedloop.experiments.stats._power import units_for_means, units_for_proportions
from closedloop.experiments.stats._proportions import (
    SMALL_EXPECTED_COUNT,
    compare_proportions,
    fisher_exact_test,
    newcombe_interval,
    small_counts,
    two_proportion_z_test,
    wilson_interval,
)
from closedloop.experiments.stats._quantiles import BOOTSTRAP_SEED, bootstrap_quantile_difference
from closedloop.experiments.stats._ratios import compare_ratios
from closedloop.experiments.stats._results import ArmEstimate, Comparison, Interval
from closedloop.experiments.stats._sequential import AlwaysValid, always_valid
from closedloop.experiments.stats._srm import SRM_THRESHOLD, SampleRatioCheck, sample_ratio_mismatch

__all__ = [
    "BOOTSTRAP_SEED",
    "SMALL_EXPECTED_COUNT",
    "SRM_THRESHOLD",
    "Adjusted",
    "AlwaysValid",
    "ArmEstimate",
    "Comparison",
    "Interval",
    "SampleRatioCheck",
    "StatsInputError",
    "always_valid",
    "bootstrap_quantile_difference",
    "compare_proportions",
    "compare_ratios",
    "cuped",
    "fisher_exact_test",
    "holm",
    "newcombe_interval",
    "sample_ratio_mismatch",
    "small_counts",
    "two_proportion_z_test",
    "units_for_means",
    "units_for_proportions",
    "welch_test",
    "wilson_interval",
]
