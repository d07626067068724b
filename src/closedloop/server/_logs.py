"""serve's log: one JSON object per line on stderr, its own events and its libraries' alike.

A long-running backend's log is read by machines (journald, Loki, ``jq``) as often as by
people; one line per record, with named fields, survives both. A traceback is a field of
its line, not lines of its own.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, Final

_FIELDS: Final = "closedloop_fields"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` (a dotted name such as ``serve.start``) with ``fields`` as JSON keys."""
    logger.log(level, event, extra={_FIELDS: {"event": event, **fields}})


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}``, one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger's records (closedloop's, uvicorn's) and Python warnings (e.g. the
    per-machine token key) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
