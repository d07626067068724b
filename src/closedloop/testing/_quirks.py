"""Provider quirks the server can imitate, to test clients against more than OpenAI itself.

Each quirk is a real behaviour of an OpenAI-compatible provider or of a recorded fixture:

- ``refuse`` (server option ``refuse_arguments``): reject named request arguments with a
  400, as older Azure OpenAI API versions answered ``stream_options``.
- ``"unrequested_usage"``: send the usage-only chunk on every chat stream, asked or not
  (as recorded fixtures, e.g. the openai SDK's own tests, do).
- ``"null_choices"``: the usage-only chunk carries ``"choices": null`` instead of ``[]``.
- ``"usage_on_last_chunk"``: usage rides on the last chunk with choices instead of a
  usage-only chunk of its own.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from closedloop.testing._replies import Reply, SSEEvent, StreamReply, error_reply

STREAM_QUIRKS = frozenset({"unrequested_usage", "null_choices", "usage_on_last_chunk"})


@dataclass(frozen=True)
class Quirks:
    """Which quirks a server imitates (none by default: it behaves like OpenAI)."""

    refuse_arguments: frozenset[str] = field(default_factory=frozenset)
    stream: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, refuse_arguments: Collection[str], stream_quirks: Collection[str]) -> Quirks:
        unknown = set(stream_quirks) - STREAM_QUIRKS
        if unknown:
            raise ValueError(
                f"stream_quirks={sorted(unknown)} are unknown; use some of {sorted(STREAM_QUIRKS)}."
            )
        return cls(frozenset(refuse_arguments), frozenset(stream_quirks))

    def refusal(self, request: Mapping[str, Any]) -> Reply | None:
        """The 400 for the first refused argument the request carries, else None."""
        for name in sorted(self.refuse_arguments):
            if name in request:
                return error_reply(
                    400, f"Unrecognized request argument supplied: {name}", "invalid_request_error"
                )
        return None

    def request(self, path: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """The request as the quirky endpoint treats it."""
        if "unrequested_usage" in self.stream and path.endswith("/chat/completions"):
            return {**request, "stream_options": {"include_usage": True}}
        return request

    def reply(self, reply: Reply) -> Reply:
        """The reply with the stream quirks applied to its chunks."""
        if not isinstance(reply, StreamReply) or not self.stream & {
            "null_choices",
            "usage_on_last_chunk",
        }:
            return reply
        events = list(reply.events)
        usage_at = next((i for i, e in enumerate(events) if _is_usage_only(e)), None)
        if usage_at is None:
            return reply
        usage_chunk = json.loads(events[usage_at].data)
        if "usage_on_last_chunk" in self.stream and usage_at > 0:
            last = json.loads(events[usage_at - 1].data)
            events[usage_at - 1] = _event(
                {**last, "usage": usage_chunk["usage"]}, events[usage_at - 1]
            )
            del events[usage_at]
        elif "null_choices" in self.stream:
            events[usage_at] = _event({**usage_chunk, "choices": None}, events[usage_at])
        return StreamReply(tuple(events))


def _is_usage_only(event: SSEEvent) -> bool:
    if not event.data.startswith("{"):
        return False
    payload = json.loads(event.data)
    return payload.get("choices") == [] and payload.get("usage") is not None


def _event(payload: Any, like: SSEEvent) -> SSEEvent:
    return SSEEvent(json.dumps(payload), event=like.event, carries_content=like.carries_content)
