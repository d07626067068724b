"""Transport-neutral reply values: endpoint builders return them, the HTTP layer writes them.

Keeping builders free of sockets makes them pure functions of the request, which is what
makes the server deterministic and easy to reason about.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event; ``carries_content`` marks where time-to-first-token starts."""

    data: str
    event: str | None = None
    carries_content: bool = False

    def encode(self) -> bytes:
        prefix = f"event: {self.event}\n" if self.event else ""
        return f"{prefix}data: {self.data}\n\n".encode()


def sse_json(payload: Any, *, event: str | None = None, carries_content: bool = False) -> SSEEvent:
    return SSEEvent(json.dumps(payload), event=event, carries_content=carries_content)


DONE_EVENT = SSEEvent("[DONE]")


@dataclass(frozen=True)
class JSONReply:
    """A complete body sent with Content-Length (``body`` may deliberately be invalid JSON)."""

    body: bytes
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StreamReply:
    """A ``text/event-stream`` body sent chunk by chunk, so delays are observable."""

    events: tuple[SSEEvent, ...]


Reply: TypeAlias = JSONReply | StreamReply


def json_reply(payload: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return JSONReply(json.dumps(payload).encode(), status, headers)


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """The ``{"error": {...}}`` envelope OpenAI uses for every failure."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def error_reply(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    return json_reply(error_body(message, error_type, code), status, headers)


class IdFactory:
    """Per-prefix counters (``chatcmpl-1``, ``resp_1``, ...) shared by all handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        with self._lock:
            value = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = value
        return f"{prefix}{value}"
