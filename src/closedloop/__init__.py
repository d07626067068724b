"""closedloop: close the feedback loop for LLM apps in production, on OpenTelemetry.

import closedloop
closedloop.instrument(service_name="support-bot")
with closedloop.context(user_id=user.id, prompt_name="triage", prompt_version="v3"):
    reply = client.chat.completions.create(...)
    trace_id = closedloop.current_trace_id()
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("closedloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from typing import TYPE_CHECKING

from closedloop._errors import ClosedloopError
from closedloop._extras import MissingExtraError
from closedloop._health import Stats, stats
from closedloop.instrumentation._context import context, current_trace_id

if TYPE_CHECKING:
    from closedloop._bootstrap import instrument, uninstrument


def __getattr__(name: str) -> object:
    """``instrument`` and ``uninstrument`` load the instrumentation (and with it openai)
    on first use, so the CLI, the store and serve start without paying for it."""
    if name in ("instrument", "uninstrument"):
        from closedloop import _bootstrap

        return getattr(_bootstrap, name)
    raise AttributeError(f"module 'closedloop' has no attribute {name!r}")


__all__ = [
    "ClosedloopError",
    "MissingExtraError",
    "Stats",
    "__version__",
    "context",
    "current_trace_id",
    "instrument",
    "stats",
    "uninstrument",
]
