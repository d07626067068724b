"""closedloop.experiments.stats: published worked examples, seeded simulations, bad input.

Simulations are vectorised and seeded; each checks a property against its simulation
error: a false-positive rate must lie in the 99 % binomial interval of the simulated count
around alpha, a power at least the target minus three standard errors of a proportion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from closedloop.experiments import stats

ALPHA = 0.05


def _within_false_positive_band(rejections: int, experiments: int) -> bool:
    """Whether the count lies in the 99 % interval of Binomial(experiments, ALPHA)."""
    low, high = scipy_stats.binom.interval(0.99, experiments, ALPHA)
    return bool(low <= rejections <= high)


# Newcombe RG (1998) "Two-sided confidence intervals for the single proportion: comparison
# of seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (score interval
# without continuity correction). Re-computed here with scipy's own Wilson implementation.
WILSON_EXAMPLES = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON_EXAMPLES)
def test_wilson_matches_newcombe_1998_table_1(x: int, n: int, low: float, high: float) -> None:
    interval = stats.wilson_interval(x, n)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)
    independent = scipy_stats.binomtest(x, n).proportion_ci(method="wilson")
    assert interval.low == pytest.approx(independent.low, abs=1e-12)
    assert interval.high == pytest.approx(independent.high, abs=1e-12)


# Newcombe RG (1998) "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17:873-890, Table II,
# method 10 (hybrid score), examples (a)-(h) for theta = p1 - p2. (a) and (b) are also the
# values the R package propint tests against; the whole table is recomputed below from
# scipy's Wilson limits with the paper's formula.
NEWCOMBE_EXAMPLES = [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
    (10, 10, 0, 10, 0.6075, 1.0000),
]


@pytest.mark.parametrize("example", NEWCOMBE_EXAMPLES)
def test_newcombe_matches_newcombe_1998_table_2(
    example: tuple[int, int, int, int, float, float],
) -> None:
    x1, n1, x2, n2, low, high = example
    # closedloop's difference is candidate - baseline: the paper's p1 is the candidate
    interval = stats.newcombe_interval(x2, n2, x1, n1)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)
    (l1, u1), (l2, u2) = (
        scipy_stats.binomtest(x, n).proportion_ci(method="wilson") for x, n in ((x1, n1), (x2, n2))
    )
    p1, p2 = x1 / n1, x2 / n2
    assert interval.low == pytest.approx(p1 - p2 - math.hypot(p1 - l1, u2 - p2), abs=1e-12)
    assert interval.high == pytest.approx(p1 - p2 + math.hypot(u1 - p1, p2 - l2), abs=1e-12)


def test_small_counts_use_fishers_exact_test_and_large_ones_the_z_test() -> None:
    small = stats.compare_proportions(1, 20, 7, 20)  # expected successes 4 < 5
    assert small.test == "Fisher's exact test"
    assert small.p_value == pytest.approx(scipy_stats.fisher_exact([[1, 19], [7, 13]]).pvalue)
    large = stats.compare_proportions(120, 400, 150, 400)
    table = [[120, 280], [150, 250]]
    assert large.test == "two-proportion z-test"
    assert large.p_value == pytest.approx(
        scipy_stats.chi2_contingency(table, correction=False).pvalue, rel=1e-10
    )


def test_a_a_false_positive_rates_of_each_test_lie_in_the_binomial_band() -> None:
    rng = np.random.default_rng(1)
    experiments = 600
    counts = rng.binomial(500, 0.3, size=(experiments, 2))
    rates = sum(stats.compare_proportions(a, 500, b, 500).p_value < ALPHA for a, b in counts)
    values = rng.lognormal(0.0, 1.0, size=(experiments, 2, 200))
    welch = sum(stats.welch_test(a, b).p_value < ALPHA for a, b in values)
    calls = rng.integers(1, 6, size=(experiments, 2, 300)).astype(float)  # per-user calls
    user_rate = rng.beta(2, 5, size=(experiments, 2, 300))  # users differ: clustered calls
    successes = rng.binomial(calls.astype(int), user_rate).astype(float)
    ratios = sum(
        stats.compare_ratios(y[0], n[0], y[1], n[1]).p_value < ALPHA
        for y, n in zip(successes, calls, strict=True)
    )
    for rejections in (rates, welch, ratios):
        assert _within_false_positive_band(int(rejections), experiments), rejections


def test_power_function_sample_size_reaches_the_power() -> None:
    rng = np.random.default_rng(2)
    experiments = 2000
    n = stats.units_for_proportions(0.20, 0.25)
    assert n == 1094  # Fleiss' formula: ((1.96*sqrt(2*.225*.775) + .8416*sqrt(.16+.1875))/.05)^2
    baseline = rng.binomial(n, 0.20, experiments)
    candidate = rng.binomial(n, 0.25, experiments)
    rejected = sum(
        stats.two_proportion_z_test(a, n, b, n) < ALPHA
        for a, b in zip(baseline, candidate, strict=True)
    )
    assert rejected / experiments >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / experiments)

    m = stats.units_for_means(sd=2.0, difference=0.5)
    a = rng.normal(0.0, 2.0, size=(1000, m))
    b = rng.normal(0.5, 2.0, size=(1000, m))
    welch = sum(stats.welch_test(x, y).p_value < ALPHA for x, y in zip(a, b, strict=True))
    assert welch / 1000 >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / 1000)


def test_cuped_keeps_the_false_positive_rate_and_narrows_intervals() -> None:
    rng = np.random.default_rng(3)
    experiments, users, rho = 600, 400, 0.7
    pre = rng.normal(10, 3, size=(experiments, 2, users))
    noise = rng.normal(0, 3, size=(experiments, 2, users))
    during = 10 + rho * (pre - 10) + math.sqrt(1 - rho**2) * noise  # correlation rho
    ones = np.ones(users)
    plain_widths, cuped_widths, reductions, rejections = [], [], [], 0
    for (x_a, x_b), (y_a, y_b) in zip(pre, during, strict=True):
        plain = stats.compare_ratios(y_a, ones, y_b, ones)
        adjusted = stats.compare_ratios(
            y_a, ones, y_b, ones, baseline_covariate=x_a, candidate_covariate=x_b
        )
        plain_widths.append(plain.interval.high - plain.interval.low)
        cuped_widths.append(adjusted.interval.high - adjusted.interval.low)
        assert adjusted.variance_reduction is not None
        reductions.append(adjusted.variance_reduction)
        rejections += adjusted.p_value < ALPHA
    assert _within_false_positive_band(rejections, experiments), rejections
    # variance shrinks by rho^2: intervals by sqrt(1 - rho^2) = 0.71
    assert np.mean(cuped_widths) / np.mean(plain_widths) == pytest.approx(
        math.sqrt(1 - rho**2), abs=0.03
    )
    assert np.mean(reductions) == pytest.approx(rho**2, abs=0.03)


def test_sequential_test_survives_daily_peeking_and_the_naive_test_does_not() -> None:
    rng = np.random.default_rng(4)
    experiments, days, per_day = 1000, 30, 100
    sd = 1.0
    # each day adds per_day units per arm; daily sums and sums of squares of N(0, 1) values
    daily = rng.normal(0, sd, size=(experiments, 2, days, per_day))
    n = per_day * np.arange(1, days + 1)
    means = np.cumsum(daily.sum(axis=3), axis=2) / n
    squares = np.cumsum((daily**2).sum(axis=3), axis=2)
    variances = (squares - n * means**2) / (n - 1)
    difference = means[:, 1] - means[:, 0]
    se = np.sqrt((variances[:, 0] + variances[:, 1]) / n)
    naive = (2 * scipy_stats.norm.sf(np.abs(difference / se)) < ALPHA).any(axis=1)
    sequential = np.array(
        [
            any(
                stats.always_valid(d, s, mixture_sd=0.1 * sd, alpha=ALPHA).p_value < ALPHA
                for d, s in zip(ds, ss, strict=True)
            )
            for ds, ss in zip(difference, se, strict=True)
        ]
    )
    _, high = scipy_stats.binom.interval(0.99, experiments, ALPHA)
    assert naive.sum() > high  # peeking at a fixed-horizon test inflates its error
    assert sequential.mean() <= ALPHA


def test_sample_ratio_mismatch_is_flagged_at_52_48_on_a_50_50_design() -> None:
    check = stats.sample_ratio_mismatch([5200, 4800], [50, 50])
    assert check.mismatch and check.p_value == pytest.approx(
        scipy_stats.chi2.sf(16.0, 1), rel=1e-12
    )
    assert not stats.sample_ratio_mismatch([5050, 4950], [50, 50]).mismatch
    assert not stats.sample_ratio_mismatch([8010, 1990], [0.8, 0.2]).mismatch


def test_ratio_variance_is_the_textbook_delta_method() -> None:
    """Var(Y/N) ~ (s_y^2 - 2 R s_yn + R^2 s_n^2) / (k mean_n^2), k units (Deng et al. 2018)."""
    rng = np.random.default_rng(6)
    n = [rng.integers(1, 9, 250).astype(float) for _ in range(2)]
    y = [rng.binomial(calls.astype(int), 0.3).astype(float) for calls in n]
    variances = []
    for ys, ns in zip(y, n, strict=True):
        r = ys.sum() / ns.sum()
        cov = np.cov(ys, ns, ddof=1)
        variances.append(
            (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (250 * ns.mean() ** 2)
        )
    result = stats.compare_ratios(y[0], n[0], y[1], n[1])
    assert result.standard_error == pytest.approx(math.sqrt(sum(variances)), rel=1e-10)


def test_holm_matches_the_step_down_procedure() -> None:
    # Holm 1979: sorted p (0.01, 0.02, 0.03, 0.04) times (4, 3, 2, 1), made monotone
    assert stats.holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx((0.06, 0.04, 0.06, 0.06))


def test_bootstrap_quantile_difference_is_seeded_and_covers_the_shift() -> None:
    rng = np.random.default_rng(5)
    a = rng.exponential(100, 3000)
    b = rng.exponential(100, 3000) + 30  # p95 shifted by exactly 30
    first = stats.bootstrap_quantile_difference(a, b, seed=9)
    again = stats.bootstrap_quantile_difference(a, b, seed=9)
    assert first == again
    assert first.interval.contains(30.0)
    assert first.baseline.interval.contains(100 * math.log(20))  # exponential's true p95
    assert first.interval.high - first.interval.low < 60  # se of a p95 over 3000 draws ~ 10
    assert first.difference == pytest.approx(np.quantile(b, 0.95) - np.quantile(a, 0.95))
    units = np.repeat(np.arange(1000), 3)
    clustered = stats.bootstrap_quantile_difference(
        a, b, baseline_units=units, candidate_units=units
    )
    assert clustered.baseline.units == 1000


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: stats.wilson_interval(-1, 10), "successes=-1"),
        (lambda: stats.wilson_interval(11, 10), "successes=11 is more than trials=10"),
        (lambda: stats.wilson_interval(0, 0), "trials=0"),
        (lambda: stats.newcombe_interval(1, 10, 3, 2), "candidate_successes=3"),
        (lambda: stats.compare_proportions(1, 10, 2, 10, alpha=5), "alpha=5"),
        (lambda: stats.welch_test([], [1.0, 2.0]), "baseline has 0 value"),
        (lambda: stats.welch_test([1.0, float("nan")], [1.0, 2.0]), "baseline holds NaN"),
        (lambda: stats.compare_ratios([1, 2, 3], [1, 1], [1, 2], [1, 1]), "baseline_numerators"),
        (lambda: stats.compare_ratios([1, 2], [0, 0], [1, 2], [1, 1]), "baseline_denominators"),
        (lambda: stats.sample_ratio_mismatch([10, 10], [1]), "shares"),
        (lambda: stats.sample_ratio_mismatch([10, -1], [1, 1]), r"observed\[1\]=-1"),
        (lambda: stats.units_for_proportions(0.2, 0.2), "candidate_rate equals"),
        (lambda: stats.units_for_means(sd=0, difference=1), "sd=0"),
        (lambda: stats.always_valid(0.1, 0.0, mixture_sd=1), "standard_error=0"),
        (lambda: stats.holm([0.5, 1.5]), r"p_values\[1\]=1.5"),
    ],
)
def test_bad_input_names_the_argument(call: object, named: str) -> None:
    with pytest.raises(stats.StatsInputError, match=named):
        call()  # type: ignore[operator]


def test_zero_standard_error_gives_no_p_value_rather_than_certainty() -> None:
    # Constant arms carry no information about the spread: p = 0 with a [1, 1] interval
    # claimed a certain difference from two users per arm.
    for comparison in (
        stats.welch_test([1, 1], [2, 2]),
        stats.compare_ratios([0, 0], [1, 1], [1, 1], [1, 1]),
    ):
        assert math.isnan(comparison.p_value)
        assert math.isnan(comparison.interval.low) and math.isnan(comparison.interval.high)


def test_wilson_bounds_are_exact_at_0_and_n() -> None:
    assert stats.wilson_interval(0, 30).low == 0.0
    assert stats.wilson_interval(30, 30).high == 1.0
