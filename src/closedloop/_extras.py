"""Optional parts of closedloop and the install that brings each one.

``pip install closedloop`` is the core an app needs to call ``instrument()``: tracing,
redaction, cost and feedback emission. Storage, sampling, implicit-feedback detectors and
the CLI are extras, so a production app does not pull chDB or a regex engine it never uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from closedloop._errors import ClosedloopError


class MissingExtraError(ClosedloopError, ImportError):
    """A part of closedloop was used without the extra that installs its dependencies."""


def _missing(module: str, extra: str, feature: str) -> MissingExtraError:
    return MissingExtraError(
        f"{feature} needs the '{module.partition('.')[0]}' package, which comes with the "
        f"'{extra}' extra: pip install 'closedloop[{extra}]'"
    )


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or fail with the ``pip install`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise _missing(module, extra, feature) from error


@contextmanager
def extra_needed(extra: str, feature: str) -> Iterator[None]:
    """Plain ``import`` statements inside keep their types; a missing one names the extra."""
    try:
        yield
    except ModuleNotFoundError as error:
        raise _missing(error.name or "?", extra, feature) from error
