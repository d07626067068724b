"""Several metrics at once: Holm's step-down correction of their p-values.

Testing fifteen metrics at 5 % each finds a "difference" somewhere most of the time;
Holm (1979, "A simple sequentially rejective multiple test procedure", Scand. J. Statist.
6:65-70) keeps the chance of any false finding at alpha, uniformly more powerful than
Bonferroni, with no assumption on how the metrics depend on each other."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop.experiments.stats import _checks as check


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm-adjusted p-values, in the given order: reject where adjusted < alpha."""
    for index, p in enumerate(p_values):
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise check.StatsInputError(f"p_values[{index}]={p!r}: pass p-values in [0, 1].")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return tuple(adjusted)
