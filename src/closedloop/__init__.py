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

from closedloop._bootstrap import instrument, uninstrument
from closedloop._errors import ClosedloopError
from closedloop._extras import MissingExtraError
from closedloop._health import Stats, stats
from closedloop.instrumentation._context import context, current_trace_id

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
