"""``compare``: a candidate prompt version against the baseline, on every metric, from the
store. The library call behind ``closedloop compare``, the server and the UI.

Reads per-unit sums with one query (``sql/compare_units.sql``), checks the sample ratio
first, then runs the statistics of ``closedloop.experiments.stats`` on each metric and
gives each a verdict. With users as the unit of randomisation every statistic comes from
per-user aggregates (a user's calls are not independent); with calls as the unit, each
call is one observation.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from closedloop._errors import ClosedloopError
from closedloop.experiments import stats
from closedloop.experiments._compare_metrics import METRIC_NAMES, METRICS, Metric
from closedloop.store._schema import SchemaSettings, render

Unit = Literal["user", "call"]
Role = Literal["primary", "guardrail", "metric"]
Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
DEFAULT_PRE_PERIOD = datetime.timedelta(days=14)
MIXTURE_SD_UNITS = 0.1
"""The sequential test's mixing sd, in per-unit standard deviations: tuned to small effects."""
MIN_UNITS_PER_ARM = 10
"""No verdict before each arm has this many units: below it one unit moves the estimate
and the variance estimates behind every test are themselves noise."""
MIN_OUTCOMES = 5
"""No verdict on a rate before both arms together have this many events and this many
non-events (pooled, so 0 events against 50 is still a verdict): a rate nobody (or
everybody) hit says nothing about a difference."""


class CompareError(ClosedloopError, ValueError):
    """An argument ``compare`` cannot use; the message names it and the fix."""


class Verdict(str, enum.Enum):
    """What a metric's comparison says, in words a person acts on."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no detectable difference"
    NOT_ENOUGH_DATA = "not enough data"
    SAMPLE_RATIO_MISMATCH = "not trustworthy: sample ratio mismatch"


class Queryable(Protocol):
    """What ``compare`` needs of a store: its settings and a parameterised query."""

    settings: SchemaSettings

    def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


@runtime_checkable
class ColumnQueryable(Queryable, Protocol):
    """A store that also answers column by column, as every ``Store`` does: 300,000 units
    then reach numpy in a tenth of the time their rows take."""

    def query_columns(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]: ...


@dataclass(frozen=True)
class MetricResult:
    """One metric: the comparison (None without enough data in an arm), its p-value after
    the multiple-testing correction, the always-valid p-value and confidence sequence, the
    verdict and, when inconclusive for lack of units, how many more each arm needs."""

    name: str
    label: str
    better: str
    role: Role
    comparison: stats.Comparison | None
    p_value_adjusted: float | None
    sequential: stats.AlwaysValid | None
    verdict: Verdict
    units_needed_per_arm: int | None = None
    more_units_needed: int | None = None

    @property
    def summary(self) -> str:
        """The verdict as a person reads it."""
        if self.verdict is Verdict.NOT_ENOUGH_DATA and self.more_units_needed:
            return f"not enough data: {self.more_units_needed:,} more units per arm needed"
        return self.verdict.value


@dataclass(frozen=True)
class CompareResult:
    """The whole comparison: the sample ratio check first, then one result per metric."""

    prompt: str
    baseline: str
    candidate: str
    unit: Unit
    since: datetime.datetime | None
    until: datetime.datetime
    alpha: float
    sequential: bool
    primary: str | None
    units: tuple[int, int]
    srm: stats.SampleRatioCheck | None
    metrics: tuple[MetricResult, ...]
    excluded_units: int = 0
    """Users seen in both versions: routing was not sticky for them, so they are left out."""
    calls_without_user: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def trustworthy(self) -> bool:
        """False when the sample ratio check failed: then no verdict holds."""
        return self.srm is None or not self.srm.mismatch

    def metric(self, name: str) -> MetricResult:
        for result in self.metrics:
            if result.name == name:
                return result
        raise KeyError(f"no metric {name!r}; metrics: {', '.join(METRIC_NAMES)}")

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types (NaN and infinities as null)."""
        return {
            "prompt": self.prompt,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "unit": self.unit,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "alpha": self.alpha,
            "sequential": self.sequential,
            "primary": self.primary,
            "trustworthy": self.trustworthy,
            "units": {"baseline": self.units[0], "candidate": self.units[1]},
            "excluded_units": self.excluded_units,
            "calls_without_user": self.calls_without_user,
            "srm": _srm_json(self.srm),
            "notes": list(self.notes),
            "metrics": [_metric_json(result) for result in self.metrics],
        }


def compare(
    store: Queryable,
    *,
    prompt: str,
    baseline: str,
    candidate: str,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    unit: Unit = "user",
    primary: str | None = None,
    alpha: float = 0.05,
    shares: tuple[float, float] = (1.0, 1.0),
    min_lift: float = 0.1,
    sequential: bool = False,
    pre_period: datetime.timedelta | None = DEFAULT_PRE_PERIOD,
    seed: int = stats.BOOTSTRAP_SEED,
) -> CompareResult:
    """Compare ``candidate`` with ``baseline`` (versions of ``prompt``) on calls in
    [``since``, ``until``) (default: all, until now).

    ``unit``: what routing randomises, ``"user"`` (the hashed user id) or ``"call"``.
    ``shares``: the configured traffic of baseline and candidate (any positive weights;
    default equal), for the sample ratio check. ``primary``: the metric that decides, tested
    at ``alpha``; the others are guardrails, Holm-corrected among themselves; without it
    every metric is Holm-corrected together. ``min_lift``: the relative change worth
    detecting, for "N more units needed". ``sequential``: verdicts from the always-valid
    p-value (safe when checked every day) instead of the fixed-horizon one. ``pre_period``:
    with users as units and ``since`` given, each user's calls of this prompt in the
    ``pre_period`` before ``since`` are CUPED covariates (None: no CUPED)."""
    _check_arguments(
        prompt=prompt,
        baseline=baseline,
        candidate=candidate,
        unit=unit,
        primary=primary,
        alpha=alpha,
        shares=shares,
        min_lift=min_lift,
    )
    until = until or datetime.datetime.now(datetime.timezone.utc)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise CompareError(f"{name} must be timezone-aware, e.g. datetime.now(timezone.utc).")
    if since is not None and since >= until:
        raise CompareError(f"since={since.isoformat()} is not before until={until.isoformat()}.")
    by_user = unit == "user"
    start = since or _EPOCH
    pre_start = start - pre_period if (by_user and since and pre_period) else start
    columns = _unit_columns(
        store,
        query_text(store.settings),
        {
            "prompt": prompt,
            "baseline": baseline,
            "candidate": candidate,
            "by_user": int(by_user),
            "since_ns": _ns(start),
            "until_ns": _ns(until),
            "pre_since_ns": _ns(pre_start),
        },
    )
    data = _Units.from_columns(columns, by_user)
    units = (data.size(0), data.size(1))
    srm = stats.sample_ratio_mismatch(units, shares) if sum(units) else None
    analyses = [_Analysis(metric, data, by_user, alpha, seed) for metric in METRICS]
    metrics = [analysis.run() for analysis in analyses]
    results = _verdicts(
        metrics,
        [analysis.enough for analysis in analyses],
        primary=primary,
        alpha=alpha,
        min_lift=min_lift,
        sequential=sequential,
        by_user=by_user,
        srm=srm,
    )
    notes = [
        "statistics from per-user aggregates: a user's calls are not independent, so each "
        "user is one observation (ratios of per-user sums, delta method; rates with one "
        "outcome per user, few events, or an arm without events or non-events: Wilson, "
        "Newcombe and Fisher's exact test on the counts)"
        if by_user
        else "each call is one observation (calls are the unit of randomisation)",
        f"a verdict needs {MIN_UNITS_PER_ARM} units per arm and, for rates, {MIN_OUTCOMES} "
        f"events and {MIN_OUTCOMES} non-events in both arms together; none when every unit "
        "is alike (no spread to test against)",
        f"p95 latency: cluster bootstrap by {unit}, percentile intervals, seed {seed}; "
        "cost per successful task: delta method",
        "Holm-corrected across guardrails; primary metric at alpha"
        if primary
        else "p-values Holm-corrected across all metrics",
    ]
    if sequential:
        notes.append("verdicts from always-valid (mSPRT) p-values: safe to check every day")
    return CompareResult(
        prompt=prompt,
        baseline=baseline,
        candidate=candidate,
        unit=unit,
        since=since,
        until=until,
        alpha=alpha,
        sequential=sequential,
        primary=primary,
        units=units,
        srm=srm,
        metrics=tuple(results),
        excluded_units=data.excluded,
        calls_without_user=data.calls_without_user,
        notes=tuple(notes),
    )


def query_text(settings: SchemaSettings) -> str:
    """The per-unit query, with the store's database filled in."""
    text = resources.files("closedloop.experiments").joinpath("sql", "compare_units.sql")
    return render(text.read_text("utf-8"), settings)


def _unit_columns(
    store: Queryable, sql: str, parameters: Mapping[str, Any]
) -> Mapping[str, Sequence[Any]]:
    """The per-unit query's answer column by column; from its rows when the store answers
    rows only (serve's read-only SQL route, whose rows are parsed already)."""
    if isinstance(store, ColumnQueryable):
        return store.query_columns(sql, parameters)
    rows = store.query(sql, parameters)
    return {name: [row[name] for row in rows] for name in (rows[0] if rows else _CORE_COLUMNS)}


def _check_arguments(
    *,
    prompt: str,
    baseline: str,
    candidate: str,
    unit: str,
    primary: str | None,
    alpha: float,
    shares: tuple[float, float],
    min_lift: float,
) -> None:
    for name, value in (("prompt", prompt), ("baseline", baseline), ("candidate", candidate)):
        if not isinstance(value, str) or not value:
            raise CompareError(f"{name}={value!r}: pass the prompt's name and two versions.")
    if baseline == candidate:
        raise CompareError(f"baseline and candidate are both {baseline!r}: pass two versions.")
    if unit not in ("user", "call"):
        raise CompareError(f"unit={unit!r}: pass 'user' or 'call' (what routing randomises).")
    if primary is not None and primary not in METRIC_NAMES:
        raise CompareError(f"primary={primary!r}: pass one of {', '.join(METRIC_NAMES)}.")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise CompareError(f"alpha={alpha!r}: pass a level between 0 and 1, e.g. 0.05.")
    if len(shares) != 2 or not all(
        isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in shares
    ):
        raise CompareError(
            f"shares={shares!r}: pass the baseline's and the candidate's traffic, two "
            "positive numbers such as (80, 20)."
        )
    if not (isinstance(min_lift, (int, float)) and 0 < min_lift < 10):
        raise CompareError(f"min_lift={min_lift!r}: pass a relative change such as 0.1 (10 %).")


def _ns(moment: datetime.datetime) -> int:
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1) * 1000


_ARM_CALLS = ("baseline_calls", "candidate_calls")
_CORE_COLUMNS = ("unit", "latencies", "calls", *_ARM_CALLS)
"""The columns ``_Units`` reads for every metric: the empty answer of a store that answers
rows only (no rows, so no names); a metric without its own columns has no data."""


@dataclass(frozen=True)
class _Units:
    """Per-unit sums of each arm (0: baseline, 1: candidate), column by column, and each
    arm's latencies unit after unit, with the position of each one's unit in its arm."""

    columns: tuple[dict[str, Array], dict[str, Array]]
    latencies: tuple[Array, Array]
    latency_units: tuple[IntArray, IntArray]
    sizes: tuple[int, int]
    excluded: int
    calls_without_user: int

    def size(self, arm: int) -> int:
        return self.sizes[arm]

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]], by_user: bool) -> _Units:
        """Whole columns into numpy (a Python loop per unit costs seconds for 300,000
        calls): units without a user are counted, units in both arms counted and left
        out. Calls as units have no pre-period (no CUPED): its columns are not read."""
        names = [
            name
            for name in columns
            if name not in ("unit", "latencies") and (by_user or not name.startswith("pre_"))
        ]
        table = np.array([columns[name] for name in names], dtype=np.float64)
        number = dict(zip(names, table, strict=True))
        without_user = np.array(columns["unit"], dtype=object) == ""
        in_arm = [~without_user & (number[name] > 0) for name in _ARM_CALLS]
        masks = (in_arm[0] & ~in_arm[1], in_arm[1] & ~in_arm[0])
        latencies, latency_units = _split_latencies(columns["latencies"], masks)
        baseline, candidate = (dict(zip(names, table[:, mask], strict=True)) for mask in masks)
        return cls(
            (baseline, candidate),
            latencies,
            latency_units,
            (int(np.count_nonzero(masks[0])), int(np.count_nonzero(masks[1]))),
            int(np.count_nonzero(in_arm[0] & in_arm[1])),
            int(number["calls"][without_user].sum()),
        )


def _split_latencies(
    per_unit: Sequence[Sequence[float]], masks: tuple[npt.NDArray[np.bool_], ...]
) -> tuple[tuple[Array, Array], tuple[IntArray, IntArray]]:
    """Each arm's latencies, flat in unit order, and the unit (0, 1, ... within the arm)
    each belongs to: what the cluster bootstrap resamples."""
    counts = np.fromiter(map(len, per_unit), dtype=np.int64, count=len(per_unit))
    flat = np.fromiter(
        itertools.chain.from_iterable(per_unit), dtype=np.float64, count=int(counts.sum())
    )
    values, labels = [], []
    for mask in masks:
        values.append(flat[np.repeat(mask, counts)])
        labels.append(np.repeat(np.arange(np.count_nonzero(mask)), counts[mask]))
    return (values[0], values[1]), (labels[0], labels[1])


class _NotEnoughData(Exception):
    """An arm lacks the units a metric needs."""


@dataclass
class _Analysis:
    """One metric's comparison from the per-unit sums; ``enough`` after ``run``: whether
    the data meet the minimum for a verdict (``MIN_UNITS_PER_ARM``, ``MIN_OUTCOMES``)."""

    metric: Metric
    data: _Units
    by_user: bool
    alpha: float
    seed: int
    enough: bool = False

    def run(self) -> stats.Comparison | None:
        try:
            if self.metric.kind == "quantile":
                return self._quantile()
            if not self.by_user and self.metric.kind == "rate":
                return self._proportions()
            if not self.by_user and self.metric.kind == "mean":
                return self._means()
            return self._ratios()
        except (_NotEnoughData, stats.StatsInputError):
            return None

    def _arm(self, arm: int, name: str) -> Array:
        column = self.data.columns[arm].get(name)
        if column is None:
            raise _NotEnoughData
        return column

    def _with_data(self, arm: int) -> npt.NDArray[np.bool_]:
        """Units counted in this metric: with a denominator, or all for cost per success."""
        denominators = self._arm(arm, self.metric.denominator)
        keep = np.ones(denominators.size, dtype=bool)
        if self.metric.kind != "ratio":
            keep = denominators > 0
        if np.count_nonzero(keep) < 2:
            raise _NotEnoughData
        return keep

    def _judge(self, units: tuple[int, int], counts: tuple[int, int, int, int] | None) -> None:
        """Set ``enough`` from the units per arm and, for a rate, (events, trials) per arm."""
        self.enough = min(units) >= MIN_UNITS_PER_ARM
        if counts is not None:
            events, trials = counts[0] + counts[2], counts[1] + counts[3]
            self.enough &= min(events, trials - events) >= MIN_OUTCOMES

    def _proportions(self) -> stats.Comparison:
        counts = []
        for arm in (0, 1):
            keep = self._with_data(arm)
            counts += [int(self._arm(arm, self.metric.numerator)[keep].sum()), int(keep.sum())]
        x1, n1, x2, n2 = counts
        self._judge((n1, n2), (x1, n1, x2, n2))
        return stats.compare_proportions(x1, n1, x2, n2, alpha=self.alpha)

    def _means(self) -> stats.Comparison:
        values = [self._arm(arm, self.metric.numerator)[self._with_data(arm)] for arm in (0, 1)]
        self._judge((values[0].size, values[1].size), None)
        return stats.welch_test(values[0], values[1], alpha=self.alpha)

    def _exact_rate(self, pairs: list[tuple[Array, Array]]) -> stats.Comparison | None:
        """A rate per user as counts, when the delta method would mislead: every user one
        outcome (then the counts are exactly Bernoulli trials), few events (Cochran's
        rule: its normal approximation fails, Fisher's test does not), or an arm with no
        event or no non-event (its delta-method interval is [0, 0]). Wilson, Newcombe and
        the z-test or Fisher's exact test on the summed counts; the units stay users."""
        (y_a, n_a), (y_b, n_b) = pairs
        x1, t1, x2, t2 = (int(v.sum()) for v in (y_a, n_a, y_b, n_b))
        one_each = bool(np.all(n_a == 1) and np.all(n_b == 1))
        extreme = x1 in (0, t1) or x2 in (0, t2)
        if not (one_each or extreme or stats.small_counts(x1, t1, x2, t2)):
            return None
        exact = stats.compare_proportions(x1, t1, x2, t2, alpha=self.alpha)
        return dataclasses.replace(
            exact,
            baseline=dataclasses.replace(exact.baseline, units=y_a.size),
            candidate=dataclasses.replace(exact.candidate, units=y_b.size),
        )

    def _ratios(self) -> stats.Comparison:
        keeps = [self._with_data(arm) for arm in (0, 1)]
        pairs = [
            (
                self._arm(arm, self.metric.numerator)[keep],
                self._arm(arm, self.metric.denominator)[keep],
            )
            for arm, keep in zip((0, 1), keeps, strict=True)
        ]
        units = (pairs[0][0].size, pairs[1][0].size)
        if self.metric.kind == "rate":
            x1, t1, x2, t2 = (int(v.sum()) for pair in pairs for v in pair)
            self._judge(units, (x1, t1, x2, t2))
            exact = self._exact_rate(pairs)
            if exact is not None:
                return exact
        else:
            self._judge(units, None)
        covariates = self._covariates(keeps) if self.by_user else None
        return stats.compare_ratios(
            pairs[0][0],
            pairs[0][1],
            pairs[1][0],
            pairs[1][1],
            baseline_covariate=covariates[0] if covariates else None,
            candidate_covariate=covariates[1] if covariates else None,
            alpha=self.alpha,
        )

    def _covariates(self, keeps: list[npt.NDArray[np.bool_]]) -> tuple[Array, Array] | None:
        """Each unit's pre-period ratio, linearised around the pooled pre-period ratio
        (0 for a user without pre-period calls); None when no unit has any."""
        pre = [
            (
                self._arm(arm, "pre_" + self.metric.numerator)[keep],
                self._arm(arm, "pre_" + self.metric.denominator)[keep],
            )
            for arm, keep in zip((0, 1), keeps, strict=True)
        ]
        denominator = sum(float(n.sum()) for _, n in pre)
        if denominator == 0:
            return None
        ratio = sum(float(y.sum()) for y, _ in pre) / denominator
        return pre[0][0] - ratio * pre[0][1], pre[1][0] - ratio * pre[1][1]

    def _quantile(self) -> stats.Comparison:
        values, labels = [], []
        self._judge((self.data.size(0), self.data.size(1)), None)
        for arm in (0, 1):
            if self.data.size(arm) < 2:
                raise _NotEnoughData
            values.append(self.data.latencies[arm])
            labels.append(self.data.latency_units[arm])
        return stats.bootstrap_quantile_difference(
            values[0],
            values[1],
            quantile=0.95,
            baseline_units=labels[0] if self.by_user else None,
            candidate_units=labels[1] if self.by_user else None,
            alpha=self.alpha,
            seed=self.seed,
        )


def _verdicts(
    comparisons: list[stats.Comparison | None],
    enough: list[bool],
    *,
    primary: str | None,
    alpha: float,
    min_lift: float,
    sequential: bool,
    by_user: bool,
    srm: stats.SampleRatioCheck | None,
) -> list[MetricResult]:
    """Adjusted p-values, the always-valid test and each metric's verdict; a metric below
    the minimum for a verdict, or without a p-value, is not tested (nor Holm-counted)."""
    always = [_always_valid(c, alpha) for c in comparisons]
    tested = [
        (a.p_value if a else None) if sequential else (c.p_value if c else None)
        for a, c in zip(always, comparisons, strict=True)
    ]
    tested = [
        p if ok and p is not None and math.isfinite(p) else None
        for p, ok in zip(tested, enough, strict=True)
    ]
    roles: list[Role] = [
        ("primary" if m.name == primary else "guardrail") if primary else "metric" for m in METRICS
    ]
    adjusted: list[float | None] = [None] * len(METRICS)
    for group in ("primary", "guardrail", "metric"):
        found = [
            (i, p)
            for i, (r, p) in enumerate(zip(roles, tested, strict=True))
            if r == group and p is not None
        ]
        for (i, _), p in zip(found, stats.holm([p for _, p in found]), strict=True):
            adjusted[i] = p
    results = []
    for i, metric in enumerate(METRICS):
        comparison, p_adjusted = comparisons[i], adjusted[i]
        needed = _units_needed(metric, comparison, alpha, min_lift, by_user)
        more = None
        if comparison is not None and srm is not None and srm.mismatch:
            verdict = Verdict.SAMPLE_RATIO_MISMATCH  # replaces every verdict
        elif comparison is None or p_adjusted is None:
            verdict = Verdict.NOT_ENOUGH_DATA
            if comparison is not None:
                current = min(comparison.baseline.units, comparison.candidate.units)
                more = max(MIN_UNITS_PER_ARM, needed or 0) - current
                more = more if more > 0 else None
        elif p_adjusted < alpha:
            higher = comparison.difference > 0
            verdict = Verdict.BETTER if higher == (metric.better == "higher") else Verdict.WORSE
        else:
            current = min(comparison.baseline.units, comparison.candidate.units)
            if needed is not None and needed > current:
                verdict, more = Verdict.NOT_ENOUGH_DATA, needed - current
            else:
                verdict = Verdict.NO_DIFFERENCE
        results.append(
            MetricResult(
                metric.name,
                metric.label,
                metric.better,
                roles[i],
                comparison,
                p_adjusted,
                always[i],
                verdict,
                needed,
                more,
            )
        )
    return results


def _always_valid(comparison: stats.Comparison | None, alpha: float) -> stats.AlwaysValid | None:
    if comparison is None or not comparison.standard_error > 0:
        return None
    return stats.always_valid(
        comparison.difference,
        comparison.standard_error,
        mixture_sd=MIXTURE_SD_UNITS * comparison.unit_sd,
        alpha=alpha,
    )


def _units_needed(
    metric: Metric,
    comparison: stats.Comparison | None,
    alpha: float,
    min_lift: float,
    by_user: bool,
) -> int | None:
    """Units per arm to detect a ``min_lift`` relative change in the better direction from
    the baseline's value; None when that is undefined (no data, a baseline of 0)."""
    if comparison is None or comparison.baseline.value == 0:
        return None
    base = comparison.baseline.value
    target = base * (1 + min_lift if metric.better == "higher" else 1 - min_lift)
    try:
        if metric.kind == "rate" and not by_user:
            if not (0 < base < 1 and 0 < target < 1):
                return None
            return stats.units_for_proportions(base, target, alpha=alpha)
        if not comparison.unit_sd > 0:
            return None
        return stats.units_for_means(comparison.unit_sd, target - base, alpha=alpha)
    except stats.StatsInputError:
        return None


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _interval_json(interval: stats.Interval | None) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {
        "low": _number(interval.low),
        "high": _number(interval.high),
        "level": interval.level,
        "method": interval.method,
    }


def _srm_json(srm: stats.SampleRatioCheck | None) -> dict[str, Any] | None:
    if srm is None:
        return None
    return {
        "mismatch": srm.mismatch,
        "p_value": srm.p_value,
        "threshold": srm.threshold,
        "observed": list(srm.observed),
        "expected": list(srm.expected),
        "shares": list(srm.shares),
    }


def _metric_json(result: MetricResult) -> dict[str, Any]:
    c = result.comparison
    arms = {}
    if c is not None:
        for name, arm in (("baseline", c.baseline), ("candidate", c.candidate)):
            arms[name] = {
                "value": _number(arm.value),
                "interval": _interval_json(arm.interval),
                "units": arm.units,
            }
    return {
        "name": result.name,
        "label": result.label,
        "better": result.better,
        "role": result.role,
        **arms,
        "difference": _number(c.difference) if c else None,
        "interval": _interval_json(c.interval) if c else None,
        "relative_lift": _number(c.relative_lift) if c else None,
        "p_value": _number(c.p_value) if c else None,
        "p_value_adjusted": result.p_value_adjusted,
        "test": c.test if c else None,
        "variance_reduction": c.variance_reduction if c else None,
        "sequential_p_value": result.sequential.p_value if result.sequential else None,
        "sequential_interval": _interval_json(result.sequential.interval)
        if result.sequential
        else None,
        "verdict": result.verdict.value,
        "summary": result.summary,
        "units_needed_per_arm": result.units_needed_per_arm,
        "more_units_needed": result.more_units_needed,
    }
