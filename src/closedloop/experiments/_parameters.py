"""The model parameters a prompt version may set, and the check of each value.

A version's ``parameters`` are passed as keyword arguments to the chat completions call,
so a typo (``temprature``) or a wrong type would fail only for the units routed to that
version, in production. Checking them at load turns that into a refused file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

Check = Callable[[object], str | None]
"""Returns what is wrong with a value (completing "must be ..."), or None if it is fine."""


def _number(low: float, high: float) -> Check:
    def check(value: object) -> str | None:
        # Compared as they are, never through float(): an int of 400 digits overflows it,
        # while NaN fails every comparison and infinities fail the bounds.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"must be a number from {low:g} to {high:g}"

    return check


def _integer(low: int) -> Check:
    def check(value: object) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= low:
            return None
        return f"must be an integer of at least {low}"

    return check


def _of_type(kind: type, described: str) -> Check:
    def check(value: object) -> str | None:
        return None if isinstance(value, kind) else f"must be {described}"

    return check


def _stop(value: object) -> str | None:
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    ):
        return None
    return "must be a string or a list of strings"


def _tool_choice(value: object) -> str | None:
    return None if isinstance(value, (str, dict)) else "must be a string or a mapping"


_ANY_INT = -(2**63)
_BOOL = _of_type(bool, "true or false")
_TEXT = _of_type(str, "a string")
_MAPPING = _of_type(dict, "a mapping")
_LIST = _of_type(list, "a list")
CHECKS: Mapping[str, Check] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "n": _integer(1),
    "seed": _integer(_ANY_INT),
    "top_logprobs": _integer(0),
    "logprobs": _BOOL,
    "parallel_tool_calls": _BOOL,
    "store": _BOOL,
    "stop": _stop,
    "reasoning_effort": _TEXT,
    "service_tier": _TEXT,
    "verbosity": _TEXT,
    "prompt_cache_key": _TEXT,
    "response_format": _MAPPING,
    "logit_bias": _MAPPING,
    "metadata": _MAPPING,
    "prediction": _MAPPING,
    "web_search_options": _MAPPING,
    "extra_body": _MAPPING,
    "tools": _LIST,
    "modalities": _LIST,
    "tool_choice": _tool_choice,
}


def unknown_parameter_fix(name: str) -> str:
    """The fix for a parameter name closedloop does not know: the likely intended one."""
    close = difflib.get_close_matches(name, CHECKS, n=1)
    if name in ("model", "messages"):
        return f"set {name} on the version itself, not under parameters"
    if close:
        return f"did you mean {close[0]}?"
    return f"use one of {', '.join(sorted(CHECKS))}, or extra_body for a provider's own"
