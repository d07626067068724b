"""The quantile bootstrap against the multinomial resampling it stands for.

``_reference_replicates`` is the algorithm before the window (a cumulative sum over every
value for every resample), kept here as the reference. With unit labels the windowed
bootstrap makes the same draws: every replicate and every field of the comparison must be
equal, not approximately equal. Without them the resampled quantile's position is drawn
from its exact distribution: that distribution is checked against enumerating every
resample, and samples of it against the reference's, by chi-square tests at a strict level
with fixed seeds (deterministic, and shown able to fail)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from closedloop.experiments.stats import _quantiles
from closedloop.experiments.stats._results import Comparison

Array = npt.NDArray[np.float64]
Units = npt.NDArray[np.intp] | None


def _reference_positions(
    draws: npt.NDArray[np.int64], sorted_unit: npt.NDArray[np.intp], quantile: float
) -> npt.NDArray[np.intp]:
    weights = np.cumsum(draws[:, sorted_unit], axis=1)
    targets = quantile * weights[:, -1]
    return np.argmax(weights >= targets[:, None], axis=1)


def _reference_replicates(
    values: Array,
    unit: npt.NDArray[np.intp],
    quantile: float,
    resamples: int,
    rng: np.random.Generator,
) -> Array:
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_unit = values[order], unit[order]
    units = int(sorted_unit.max()) + 1
    batch = max(1, _quantiles._BATCH_CELLS // max(values.size, units))
    found = np.empty(resamples)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        draws = rng.multinomial(units, np.full(units, 1 / units), size=size)
        found[start : start + size] = sorted_values[
            _reference_positions(draws, sorted_unit, quantile)
        ]
    return found


@dataclass(frozen=True)
class Case:
    baseline: Array
    candidate: Array
    baseline_units: Units = None
    candidate_units: Units = None
    quantile: float = 0.95
    resamples: int = 200
    seed: int = 0


@contextmanager
def _batch_cells(cells: int | None) -> Iterator[None]:
    """Smaller batches, so one call runs several (the reference reads the same constant)."""
    if cells is None:
        yield
        return
    with mock.patch.object(_quantiles, "_BATCH_CELLS", cells):
        yield


def _compare(case: Case) -> Comparison:
    return _quantiles.bootstrap_quantile_difference(
        case.baseline,
        case.candidate,
        quantile=case.quantile,
        baseline_units=case.baseline_units,
        candidate_units=case.candidate_units,
        resamples=case.resamples,
        seed=case.seed,
    )


def _unit(values: Array, units: Units) -> npt.NDArray[np.intp]:
    """The arm's unit index; one unit per value (the reference's iid case) without labels."""
    return (
        np.arange(values.size)
        if units is None
        else _quantiles._unit_index("arm", units, values.size)
    )


def _assert_exact(case: Case, cells: int | None = None) -> None:
    """Replicates equal element by element, the same draws consumed, comparisons equal
    (arms without labels go the exact-distribution way in both, so the same there too)."""
    with _batch_cells(cells):
        for values, units in (
            (case.baseline, case.baseline_units),
            (case.candidate, case.candidate_units),
        ):
            unit = _unit(values, units)
            rng, reference_rng = np.random.default_rng(case.seed), np.random.default_rng(case.seed)
            found = _quantiles._cluster_replicates(values, unit, case.quantile, case.resamples, rng)
            expected = _reference_replicates(
                values, unit, case.quantile, case.resamples, reference_rng
            )
            np.testing.assert_array_equal(found, expected, strict=True)
            assert rng.bit_generator.state == reference_rng.bit_generator.state
        result = _compare(case)
        with mock.patch.object(_quantiles, "_cluster_replicates", _reference_replicates):
            assert result == _compare(case)


def _generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _units(labels: int, size: int, seed: int) -> npt.NDArray[np.intp]:
    return _generator(seed).integers(0, labels, size).astype(np.intp)


HAND_PICKED = {
    "ties": Case(
        _generator(1).integers(0, 4, 3000).astype(float),
        _generator(2).integers(0, 5, 3000).astype(float),
    ),
    "all equal": Case(np.full(500, 7.0), np.full(400, 7.0)),
    "one unit holds most values": Case(
        _generator(3).exponential(100, 1000),
        _generator(4).exponential(100, 1000),
        baseline_units=np.concatenate([np.zeros(900, np.intp), np.arange(1, 101)]),
        candidate_units=np.concatenate([np.arange(1, 101), np.zeros(900, np.intp)]),
    ),
    "two values": Case(np.array([1.0, 2.0]), np.array([5.0, 3.0]), quantile=0.5),
    "quantile near 0": Case(
        _generator(5).normal(0, 1, 5000), _generator(6).normal(0, 1, 5000), quantile=1e-6
    ),
    "quantile near 1": Case(
        _generator(7).normal(0, 1, 5000), _generator(8).normal(0, 1, 5000), quantile=1 - 1e-9
    ),
    "few units": Case(
        _generator(9).lognormal(0, 1, 1000),
        _generator(10).lognormal(0, 1, 1200),
        baseline_units=_units(3, 1000, 11),
        candidate_units=_units(3, 1200, 12),
    ),
    "many units": Case(
        _generator(13).lognormal(0, 1, 5000),
        _generator(14).lognormal(0, 1, 5000),
        baseline_units=_units(4000, 5000, 15),
        candidate_units=_units(4000, 5000, 16),
    ),
    "many values, window far narrower": Case(
        _generator(17).lognormal(0, 1, 40_000),
        _generator(18).lognormal(0.1, 1, 40_000),
        resamples=300,
        seed=_quantiles.BOOTSTRAP_SEED,
    ),
}


@pytest.mark.parametrize("name", HAND_PICKED)
def test_hand_picked_cases_match_the_full_sum(name: str) -> None:
    _assert_exact(HAND_PICKED[name])


@st.composite
def cases(draw: st.DrawFn) -> tuple[Case, int | None]:
    """Arms of 2-300 values (continuous, or few distinct ones for ties), with or without
    units (1 to one per value), any quantile, seed, and batch size."""
    arms: list[tuple[Array, Units]] = []
    for _ in range(2):
        size = draw(st.integers(2, 300))
        value = (
            st.floats(-1e6, 1e6, allow_nan=False)
            if draw(st.booleans())
            else st.integers(0, 3).map(float)
        )
        values = np.array(draw(st.lists(value, min_size=size, max_size=size)))
        labels = draw(st.none() | st.integers(1, size))
        units = None if labels is None else _units(labels, size, draw(st.integers(0, 2**32 - 1)))
        arms.append((values, units))
    quantile = draw(
        st.sampled_from([0.5, 0.95, 0.99])
        | st.floats(1e-9, 1 - 1e-9, exclude_min=True, exclude_max=True)
    )
    case = Case(
        arms[0][0],
        arms[1][0],
        baseline_units=arms[0][1],
        candidate_units=arms[1][1],
        quantile=quantile,
        resamples=draw(st.integers(100, 250)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    return case, draw(st.sampled_from([None, 1, 997, 20_000]))


@settings(max_examples=200, deadline=None)
@given(drawn=cases())
def test_random_cases_match_the_full_sum(drawn: tuple[Case, int | None]) -> None:
    case, cells = drawn
    _assert_exact(case, cells)


def _sorted_units(values: Array, unit: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    return unit[np.argsort(values, kind="stable")]


@pytest.mark.parametrize(
    ("lo", "hi"), [(0, 1), (1999, 2000), (1000, 1001), (1890, 1910), (0, 2000)]
)
def test_a_window_that_misses_falls_back_to_the_full_sum(lo: int, hi: int) -> None:
    values = _generator(19).lognormal(0, 1, 2000)
    sorted_unit = _sorted_units(values, _units(300, 2000, 20))
    draws = _generator(21).multinomial(300, np.full(300, 1 / 300), size=500)
    expected = _reference_positions(draws, sorted_unit, 0.95)
    outside = (expected < lo) | (expected >= hi)
    if (lo, hi) != (0, 2000):
        assert outside.sum() > 0, "the window must miss, or the fallback goes untested"
    found = _quantiles._Window.spanning(sorted_unit, 300, lo, hi).positions(
        draws, sorted_unit, 0.95
    )
    np.testing.assert_array_equal(found, expected, strict=True)


def test_the_chosen_window_misses_when_one_unit_dominates_and_stays_exact() -> None:
    # 20 small values of their own units, then one unit of 1000 larger values: resamples
    # that draw the big unit 0 or 3 times put the median far from the point median's rank
    values = np.concatenate([np.arange(20.0), 100 + _generator(22).random(1000)])
    unit = np.concatenate([np.arange(1, 21), np.zeros(1000, np.intp)])
    case = Case(values, values[::-1].copy(), unit, unit[::-1].copy(), quantile=0.5, seed=23)
    window = _quantiles._window(_sorted_units(values, unit), 21, 0.5)
    replicates = _reference_replicates(values, unit, 0.5, 200, np.random.default_rng(23))
    ordered = np.sort(values)
    missed = (replicates < ordered[window.lo]) | (replicates > ordered[window.hi - 1])
    assert missed.sum() > 0, "the window must miss, or the fallback goes untested"
    assert missed.sum() < missed.size
    _assert_exact(case)


# Without unit labels: the resampled quantile's position J drawn from its exact distribution.

DRAWS = 20_000
LEVEL = 1e-4
"""Chi-square tests reject below this p-value: strict, as each seed is fixed."""
QUANTILES = [
    5e-324,
    1e-9,
    0.1,  # 0.1 * 10 is 1.0 in floats, though the binary 0.1 is above a tenth
    0.25,
    0.5,
    0.75,
    0.95,
    1 - 1e-9,
    float(np.nextafter(1.0, 0.0)),
]


def _pmf(size: int, quantile: float) -> Array:
    """P(J = j) for each position, from the exact distribution function."""
    cdf = _quantiles._iid_cdf(np.arange(size), size, quantile)
    return np.diff(cdf, prepend=0.0)


def _enumerated_pmf(size: int, quantile: float) -> Array:
    """P(J = j) over every one of the size**size equally likely resamples."""
    picks = np.array(list(itertools.product(range(size), repeat=size)))
    draws = np.stack([np.bincount(row, minlength=size) for row in picks])
    positions = _reference_positions(draws, np.arange(size), quantile)
    return np.bincount(positions, minlength=size) / len(picks)


@pytest.mark.parametrize("size", [2, 3, 4, 6])
@pytest.mark.parametrize("quantile", QUANTILES)
def test_exact_distribution_matches_enumerating_every_resample(size: int, quantile: float) -> None:
    np.testing.assert_allclose(_pmf(size, quantile), _enumerated_pmf(size, quantile), atol=1e-14)


@pytest.mark.parametrize("size", [2, 3, 7, 10, 20, 100, 1000])
@pytest.mark.parametrize("quantile", [*QUANTILES, 0.3, 0.7, 0.9, 0.99])
def test_rank_is_where_the_reference_reaches_its_float_target(size: int, quantile: float) -> None:
    # resample c draws on the lowest position and the rest on the highest: the reference
    # picks the lowest exactly when c whole draws reach quantile * size as a float
    counts = np.arange(size + 1)
    draws = np.zeros((size + 1, size), np.int64)
    draws[:, 0], draws[:, -1] = counts, size - counts
    lowest = _reference_positions(draws, np.arange(size), quantile) == 0
    assert _quantiles._iid_rank(size, quantile) == counts[np.argmax(lowest)]


def test_rank_follows_the_float_product_not_the_exact_one() -> None:
    # the binary 0.1 times 10 is just above 1, but rounds to 1.0 as the reference computes it
    assert _quantiles._iid_rank(10, 0.1) == 1


@pytest.mark.parametrize("size", [2, 7, 30, 1000, 145_000])
@pytest.mark.parametrize("quantile", [1e-9, 0.5, 0.95, 1 - 1e-9])
def test_positions_invert_the_distribution_function(size: int, quantile: float) -> None:
    """The least j with u < P(J <= j), including u = 0, u just below 1, and u at the
    distribution function's own values (where the inequality is strict)."""
    cdf = _quantiles._iid_cdf(np.arange(size), size, quantile)
    assert np.all(np.diff(cdf) >= 0)
    assert cdf[-1] == 1.0
    uniforms = np.concatenate(
        [
            _generator(24).random(1000),
            cdf[cdf < 1][:: max(1, size // 500)],
            [0.0, float(np.nextafter(1.0, 0.0))],
        ]
    )
    np.testing.assert_array_equal(
        _quantiles._iid_positions(size, quantile, uniforms),
        np.searchsorted(cdf, uniforms, side="right"),
        strict=True,
    )


@pytest.mark.parametrize("size", [10, 5000])
def test_quantiles_near_0_and_1_are_the_resample_minimum_and_maximum(size: int) -> None:
    share = np.arange(1, size + 1) / size
    np.testing.assert_allclose(
        _quantiles._iid_cdf(np.arange(size), size, 1e-9), 1 - (1 - share) ** size
    )
    np.testing.assert_allclose(_quantiles._iid_cdf(np.arange(size), size, 1 - 1e-9), share**size)


def _groups(weights: Array, minimum: float) -> npt.NDArray[np.intp]:
    """Adjacent categories merged until each group holds ``minimum``; the remainder joins
    the last full group."""
    groups = np.empty(weights.size, np.intp)
    group, held = 0, 0.0
    for index, weight in enumerate(weights):
        groups[index] = group
        held += weight
        if held >= minimum:
            group, held = group + 1, 0.0
    if held < minimum and group > 0:
        groups[groups == group] = group - 1
    return groups


def _fit_p(counts: npt.NDArray[np.int64], pmf: Array) -> float:
    """Chi-square goodness of fit of counts to a distribution, sparse tails merged."""
    groups = _groups(pmf * counts.sum(), 5.0)
    observed = np.bincount(groups, weights=counts)
    expected = np.bincount(groups, weights=pmf) * counts.sum()
    return float(scipy_stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def _same_p(first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]) -> float:
    """Two-sample chi-square test of two count vectors over the same categories."""
    groups = _groups((first + second).astype(float), 20.0)
    table = np.stack([np.bincount(groups, weights=first), np.bincount(groups, weights=second)])
    return float(scipy_stats.chi2_contingency(table).pvalue)


def _iid_counts(size: int, quantile: float, seed: int) -> npt.NDArray[np.int64]:
    positions = _quantiles._iid_positions(size, quantile, _generator(seed).random(DRAWS))
    return np.bincount(positions, minlength=size)


def _reference_counts(size: int, quantile: float, seed: int) -> npt.NDArray[np.int64]:
    draws = _generator(seed).multinomial(size, np.full(size, 1 / size), size=DRAWS)
    return np.bincount(_reference_positions(draws, np.arange(size), quantile), minlength=size)


SAMPLED = [(30, 0.5), (30, 0.95), (30, 0.1), (200, 0.5), (200, 0.95), (200, 0.99)]


@pytest.mark.parametrize(("size", "quantile"), SAMPLED)
def test_sampled_positions_match_the_multinomial_bootstrap(size: int, quantile: float) -> None:
    iid, reference = _iid_counts(size, quantile, 25), _reference_counts(size, quantile, 26)
    assert _same_p(iid, reference) > LEVEL
    assert _fit_p(iid, _pmf(size, quantile)) > LEVEL
    assert _fit_p(reference, _pmf(size, quantile)) > LEVEL


@pytest.mark.parametrize(("size", "quantile"), SAMPLED)
def test_the_distribution_tests_reject_a_rank_off_by_one(size: int, quantile: float) -> None:
    reference = _reference_counts(size, quantile, 26)
    rank = _quantiles._iid_rank(size, quantile)
    with mock.patch.object(_quantiles, "_iid_rank", return_value=rank + 1):
        shifted = _iid_counts(size, quantile, 25)
    assert _same_p(shifted, reference) < LEVEL
    assert _fit_p(shifted, _pmf(size, quantile)) < LEVEL


@pytest.mark.parametrize(
    "values",
    [_generator(27).integers(0, 4, 30).astype(float), _generator(28).lognormal(0, 1, 200)],
    ids=["30 values with ties", "200 distinct values"],
)
def test_resampled_quantiles_match_the_multinomial_bootstrap(values: Array) -> None:
    found = _quantiles._iid_replicates(values, 0.95, DRAWS, _generator(29))
    expected = _reference_replicates(values, np.arange(values.size), 0.95, DRAWS, _generator(30))
    categories = np.unique(values)
    assert np.isin(found, categories).all()
    counts = [np.searchsorted(categories, r) for r in (found, expected)]
    first, second = (np.bincount(c, minlength=categories.size) for c in counts)
    assert _same_p(first, second) > LEVEL


def test_without_units_the_bootstrap_uses_the_exact_distribution() -> None:
    case = HAND_PICKED["ties"]
    with mock.patch.object(_quantiles, "_cluster_replicates", side_effect=AssertionError):
        result = _compare(case)
    rng = _generator(case.seed)
    baseline, candidate = (
        _quantiles._iid_replicates(values, case.quantile, case.resamples, rng)
        for values in (case.baseline, case.candidate)
    )
    assert result.standard_error == float((candidate - baseline).std(ddof=1))


@pytest.mark.parametrize("name", ["two values", "all equal", "quantile near 0", "quantile near 1"])
def test_edge_cases_without_units_resample_within_the_sample(name: str) -> None:
    case = HAND_PICKED[name]
    result = _compare(case)
    for values, arm in ((case.baseline, result.baseline), (case.candidate, result.candidate)):
        assert values.min() <= arm.interval.low <= arm.interval.high <= values.max()
    if name == "all equal":
        assert (result.difference, result.interval.low, result.interval.high) == (0, 0, 0)
        assert result.p_value == 1.0
