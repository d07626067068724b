"""Typed results shared by every test: what an interval, an arm and a comparison hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A two-sided interval at ``level`` (e.g. 0.95), and the method that made it."""

    low: float
    high: float
    level: float
    method: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class ArmEstimate:
    """One arm's value of a metric with its interval; ``units`` are the units of
    randomisation that contributed (users, or calls when each call is its own unit)."""

    value: float
    interval: Interval
    units: int


@dataclass(frozen=True)
class Comparison:
    """Candidate against baseline on one metric. ``difference`` is candidate - baseline
    and ``interval`` is its interval; ``relative_lift`` is the difference over the
    baseline's value (None when that is 0). ``standard_error`` is the difference's
    standard error where the method has one (used by the sequential test and power).
    ``p_value`` and the interval's bounds are NaN when that standard error is 0 (every
    unit alike in both arms): the data then carry no information for a test, and a p of
    0 with a zero-width interval would claim certainty.
    ``variance_reduction`` is CUPED's share of variance removed (None: not applied)."""

    baseline: ArmEstimate
    candidate: ArmEstimate
    difference: float
    interval: Interval
    relative_lift: float | None
    p_value: float
    test: str
    standard_error: float
    variance_reduction: float | None = None

    @property
    def unit_sd(self) -> float:
        """The per-unit standard deviation the difference's standard error implies
        (se = sd·√(1/n_b + 1/n_c)): what power calculations need."""
        scale = (1 / self.baseline.units + 1 / self.candidate.units) ** 0.5
        return float(self.standard_error / scale)


def relative_lift(difference: float, baseline_value: float) -> float | None:
    """``difference / baseline_value``; None when the baseline is 0 (no lift is defined)."""
    return difference / baseline_value if baseline_value != 0 else None
