"""scipy.stats, imported in one place: scipy ships no type information (its stubs are a
separate package), so the one untyped import is here and every use converts to float."""

from __future__ import annotations

from typing import Any

from closedloop._extras import extra_needed

with extra_needed("experiments", "closedloop.experiments.stats"):
    from scipy import stats as _stats  # type: ignore[import-untyped]

stats: Any = _stats
