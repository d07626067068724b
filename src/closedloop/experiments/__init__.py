"""Experiments: prompt registry, routing, shadow runs and the statistics that compare versions.

The registry and the shadow runner load with the package: an app calls ``select`` on
every request. ``compare`` and its results load SciPy, so they are imported on first use,
never by an app that only routes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from closedloop.experiments._prompt_errors import (
    PromptDirectoryError,
    PromptFileError,
    PromptVariablesError,
    UnknownPromptError,
)
from closedloop.experiments._prompt_spec import MessageTemplate, PromptSpec, PromptVersion
from closedloop.experiments._registry import PromptRegistry
from closedloop.experiments._selection import Selection, SelectionScope
from closedloop.experiments._shadow import ShadowCall, ShadowRunner, ShadowStats, ShadowVersion

if TYPE_CHECKING:
    from closedloop.experiments._compare import (
        CompareError,
        CompareResult,
        MetricResult,
        Verdict,
        compare,
    )

_ON_FIRST_USE = {
    "compare": "closedloop.experiments._compare",
    "CompareError": "closedloop.experiments._compare",
    "CompareResult": "closedloop.experiments._compare",
    "MetricResult": "closedloop.experiments._compare",
    "Verdict": "closedloop.experiments._compare",
}


def __getattr__(name: str) -> Any:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CompareError",
    "CompareResult",
    "MessageTemplate",
    "MetricResult",
    "PromptDirectoryError",
    "PromptFileError",
    "PromptRegistry",
    "PromptSpec",
    "PromptVariablesError",
    "PromptVersion",
    "Selection",
    "SelectionScope",
    "ShadowCall",
    "ShadowRunner",
    "ShadowStats",
    "ShadowVersion",
    "UnknownPromptError",
    "Verdict",
    "compare",
]
