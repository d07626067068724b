"""Rows the store refused, set aside where people can inspect (and, once fixed, re-insert).

The store refused them for what they hold (a parse or type error, e.g. a timestamp out of
DateTime64's range), so retrying cannot help, and holding them would stop every later
batch. Each refused row becomes one JSON line, fsynced, in
``<spool home>/dead-letter/rejected-<UTC time>-<pid>-<id>.jsonl``:
``{"rejected_at": ..., "table": ..., "error": ..., "row": {...}}``, where ``row`` is the row
exactly as it was sent. Bounded like the spool: past ``max_bytes`` a row is refused and
the caller counts it dropped.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any


def _row_value(row: bytes) -> Any:
    """The row as JSON (rows are JSON objects); undecodable bytes kept as text."""
    text = row.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class DeadLetters:
    """Refused rows under ``directory``, at most ``max_bytes`` in total."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._bytes = 0

    def add(self, table: str, row: bytes, error: BaseException) -> bool:
        """Write one refused row durably; False (nothing written) if over the bound."""
        now = datetime.datetime.now(datetime.timezone.utc)
        record = {
            "rejected_at": now.isoformat(),
            "table": table,
            "error": str(error),
            "row": _row_value(row),
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._path is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                stamp = now.strftime("%Y%m%dT%H%M%SZ")
                name = f"rejected-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
                self._path = self.directory / name
                self._bytes = sum(path.stat().st_size for path in self.directory.iterdir())
            if self._bytes + len(line) > self.max_bytes:
                return False
            with self._path.open("ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._bytes += len(line)
            return True
