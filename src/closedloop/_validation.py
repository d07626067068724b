"""Argument checks for public entry points: a wrong argument fails at the call, clearly.

A misconfiguration caught here is one line in the app's start-up log; the same mistake
caught later is a silent loss of traces (a counter that raises on every call, a string
``"false"`` read as true). Every message names the argument, the value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def require_type(
    name: str, value: Any, expected: type | tuple[type, ...], fix: str, *, optional: bool = False
) -> None:
    """``value`` must be an instance of ``expected`` (bools never pass as numbers)."""
    if value is None and optional:
        return
    types = expected if isinstance(expected, tuple) else (expected,)
    is_bool_as_number = isinstance(value, bool) and bool not in types
    if not isinstance(value, expected) or is_bool_as_number:
        raise TypeError(
            f"{name}={value!r} is a {type(value).__name__}, not a {_type_names(expected)}; {fix}"
        )


def require_callable(name: str, value: Any, fix: str) -> None:
    """``value`` must be callable: checked at the call, not when it is first called later."""
    if not callable(value):
        raise TypeError(f"{name}={value!r} is a {type(value).__name__}, not callable; {fix}")


def require_choice(name: str, value: Any, choices: Collection[str]) -> None:
    """``value`` must be one of the fixed strings ``choices`` (a non-string is a TypeError)."""
    allowed = ", ".join(repr(choice) for choice in choices)
    require_type(name, value, str, f"use one of {allowed}.")
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {allowed}.")


def require_non_empty_str(name: str, value: Any, fix: str) -> None:
    """``value`` must be a string with at least one character."""
    require_type(name, value, str, fix)
    if not value:
        raise ValueError(f"{name}='' is empty; {fix}")


def require_non_negative_int(name: str, value: Any, fix: str) -> None:
    require_type(name, value, int, fix)
    if value < 0:
        raise ValueError(f"{name}={value!r} is negative; {fix}")


def require_positive_int(name: str, value: Any, fix: str) -> None:
    require_type(name, value, int, fix)
    if value < 1:
        raise ValueError(f"{name}={value!r} must be at least 1; {fix}")


def finite_number(name: str, value: Any, fix: str) -> float:
    """``value`` (an int or float) as a finite float: NaN, infinities and ints too large for
    a float are a ValueError here, not an OverflowError wherever the number is used."""
    require_type(name, value, (int, float), fix)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name}={value!r} must be a finite number; {fix}")
    return number


def require_positive_number(name: str, value: Any, fix: str) -> None:
    if not finite_number(name, value, fix) > 0:
        raise ValueError(f"{name}={value!r} must be a positive, finite number; {fix}")


def require_instrument_options(
    *, tracer_provider: object, meter_provider: object, shutdown_timeout_s: object
) -> None:
    """What ``closedloop.instrument()`` and ``OpenAIInstrumentor().instrument()`` both take
    (providers None: the global ones), checked in one place for both."""
    require_type(
        "tracer_provider",
        tracer_provider,
        trace.TracerProvider,
        "pass an OpenTelemetry TracerProvider instance, or leave it out to use the global one.",
        optional=True,
    )
    require_type(
        "meter_provider",
        meter_provider,
        metrics.MeterProvider,
        "pass an OpenTelemetry MeterProvider instance, or leave it out to use the global one.",
        optional=True,
    )
    require_positive_number("shutdown_timeout_s", shutdown_timeout_s, "pass e.g. 3.0 seconds.")
