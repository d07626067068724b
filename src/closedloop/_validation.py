"""Argument checks for public entry points: a wrong argument fails at the call, clearly.

A misconfiguration caught here is one line in the app's start-up log; the same mistake
caught later is a silent loss of traces (a counter that raises on every call, a string
``"false"`` read as true). Every message names the argument, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


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
    """``value`` must be one of the fixed strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
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


def require_positive_number(name: str, value: Any, fix: str) -> None:
    require_type(name, value, (int, float), fix)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={value!r} must be a positive, finite number; {fix}")
