"""Peeking: an always-valid p-value and confidence sequence for a difference.

A fixed-horizon p-value checked every day and acted on at the first p < 0.05 is wrong far
more than 5 % of the time. The mixture sequential probability ratio test (mSPRT) with a
normal mixture over the effect stays valid at every look, whenever one stops (Johari,
Koomen, Pekelis & Walsh 2022, "Always Valid Inference: Continuous Monitoring of A/B
Tests", Operations Research 70(3):1806-1821; as Optimizely's stats engine; Eppo and
Statsig use related confidence sequences, Howard et al. 2021, Ann. Statist. 49:1055).

For an estimate d with variance V and mixing standard deviation tau, the likelihood ratio
against d0 is L = sqrt(V/(V+tau^2)) * exp(tau^2 (d-d0)^2 / (2V(V+tau^2))); by Ville's
inequality P(L ever >= 1/alpha) <= alpha under d0, so p = min(1, 1/L) may be read at every
look. Inverting the test gives the confidence sequence
d +- sqrt(V(V+tau^2)/tau^2 * (log((V+tau^2)/V) - 2 log alpha)).
Assumptions: the estimate is approximately normal at every look (hundreds of units), its
variance estimated by plug-in. tau sets where the test is most sensitive: about the size
of effect that matters (default in ``compare``: 0.1 per-unit standard deviations)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from closedloop.experiments.stats import _checks as check
from closedloop.experiments.stats._results import Interval


@dataclass(frozen=True)
class AlwaysValid:
    """The always-valid p-value and confidence sequence at this look."""

    p_value: float
    interval: Interval


def always_valid(
    difference: float,
    standard_error: float,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    null: float = 0.0,
) -> AlwaysValid:
    """mSPRT p-value for ``difference`` = ``null`` and the (1 - alpha) confidence sequence."""
    check.alpha(alpha)
    se = check.positive("standard_error", standard_error)
    tau2 = check.positive("mixture_sd", mixture_sd) ** 2
    v = se * se
    log_lr = 0.5 * math.log(v / (v + tau2)) + tau2 * (difference - null) ** 2 / (2 * v * (v + tau2))
    p_value = math.exp(-log_lr) if log_lr > 0 else 1.0
    half = math.sqrt(v * (v + tau2) / tau2 * (math.log((v + tau2) / v) - 2 * math.log(alpha)))
    method = f"mSPRT confidence sequence (normal mixture, tau={mixture_sd:.4g})"
    return AlwaysValid(p_value, Interval(difference - half, difference + half, 1 - alpha, method))
