"""Input checks: every bad argument is refused with its name and what to pass instead."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from closedloop._errors import ClosedloopError


class StatsInputError(ClosedloopError, ValueError):
    """An argument a statistical function cannot use; the message names it and the fix."""


def count(name: str, value: int) -> int:
    """A whole number >= 0 (bools refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise StatsInputError(f"{name}={value!r}: pass a whole number >= 0.")
    return int(value)


def successes(name: str, value: int, trials_name: str, trials: int) -> tuple[int, int]:
    """``(successes, trials)`` with 0 <= successes <= trials and trials >= 1."""
    x, n = count(name, value), count(trials_name, trials)
    if n == 0:
        raise StatsInputError(f"{trials_name}=0: an empty arm has no rate; pass trials >= 1.")
    if x > n:
        raise StatsInputError(
            f"{name}={x} is more than {trials_name}={n}: successes cannot exceed trials."
        )
    return x, n


def alpha(value: float, name: str = "alpha") -> float:
    """A significance level strictly between 0 and 1 (e.g. 0.05)."""
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise StatsInputError(f"{name}={value!r}: pass a level between 0 and 1, e.g. 0.05.")
    return float(value)


def positive(name: str, value: float) -> float:
    """A finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise StatsInputError(f"{name}={value!r}: pass a finite number > 0.")
    return float(value)


def sample(
    name: str, values: Sequence[float] | npt.ArrayLike, least: int = 2
) -> npt.NDArray[np.float64]:
    """A 1-d array of at least ``least`` finite numbers."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise StatsInputError(f"{name}: pass a flat sequence of numbers, got shape {array.shape}.")
    if array.size < least:
        raise StatsInputError(
            f"{name} has {array.size} value(s): at least {least} are needed; "
            "wait for more data in this arm."
        )
    if not np.all(np.isfinite(array)):
        raise StatsInputError(f"{name} holds NaN or infinite values: drop them first.")
    return array
