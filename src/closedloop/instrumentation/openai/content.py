"""Message content in the GenAI semantic-convention shape, redacted string by string.

Redaction happens on each string before it is serialised, so a placeholder can never
break the JSON and no raw content ever reaches a span attribute.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from closedloop.privacy import RedactionPipeline


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a TypedDict-style mapping or an SDK model alike."""
    if isinstance(obj, (dict, Mapping)):
        return obj.get(name, default)
    return getattr(obj, name, default)


class ContentScrubber:
    """Redacts every string it is given and keeps the running count for the span."""

    __slots__ = ("count", "redactor")

    def __init__(self, redactor: RedactionPipeline | None) -> None:
        self.redactor = redactor
        self.count = 0

    def text(self, value: str) -> str:
        if self.redactor is None or not value:
            return value
        result = self.redactor.redact(value)
        self.count += result.count
        return result.text

    def value(self, value: Any) -> Any:
        """Redact the strings inside a JSON-like value, keeping its structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value

    def arguments(self, raw: Any) -> Any:
        """Tool-call arguments: parsed JSON when possible (semconv wants an object)."""
        if isinstance(raw, str):
            try:
                return self.value(json.loads(raw))
            except ValueError:
                return self.text(raw)
        return self.value(raw)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def text_part(scrubber: ContentScrubber, text: str) -> dict[str, Any]:
    return {"type": "text", "content": scrubber.text(text)}


def tool_call_part(
    scrubber: ContentScrubber, call_id: Any, name: Any, arguments: Any
) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": call_id,
        "name": name,
        "arguments": scrubber.arguments(arguments),
    }


def _media_part(part: Any, kind: str) -> dict[str, Any]:
    """Images, audio and files: record what was sent, never the bytes or data URLs."""
    if kind in ("image_url", "input_image"):
        image = field(part, "image_url")
        url = field(image, "url") if image is not None and not isinstance(image, str) else image
        if isinstance(url, str) and not url.startswith("data:"):
            return {"type": "uri", "modality": "image", "uri": url}
        return {"type": "blob", "modality": "image"}
    if kind == "input_audio":
        return {"type": "blob", "modality": "audio"}
    return {"type": "file"}


def content_parts(scrubber: ContentScrubber, content: Any) -> list[dict[str, Any]]:
    """Chat or Responses message content (a string or a list of parts) as semconv parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(scrubber, content)]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = field(part, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(scrubber, field(part, "text") or ""))
        elif kind == "refusal":
            parts.append(
                {"type": "refusal", "content": scrubber.text(field(part, "refusal") or "")}
            )
        else:
            parts.append(_media_part(part, kind))
    return parts


def _tool_response(scrubber: ContentScrubber, content: Any) -> str:
    """A tool result as one string (the SDK allows a string or a list of text parts)."""
    if isinstance(content, str):
        return scrubber.text(content)
    return " ".join(part.get("content", "") for part in content_parts(scrubber, content))


def chat_message(scrubber: ContentScrubber, message: Any) -> dict[str, Any]:
    """One Chat Completions message (request or response side) as a semconv message."""
    role = field(message, "role")
    if role == "tool":
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": field(message, "tool_call_id"),
                    "response": _tool_response(scrubber, field(message, "content")),
                }
            ],
        }
    parts = content_parts(scrubber, field(message, "content"))
    refusal = field(message, "refusal")
    if refusal:
        parts.append({"type": "refusal", "content": scrubber.text(refusal)})
    for call in field(message, "tool_calls") or ():
        function = field(call, "function")
        parts.append(
            tool_call_part(
                scrubber, field(call, "id"), field(function, "name"), field(function, "arguments")
            )
        )
    result: dict[str, Any] = {"role": role, "parts": parts}
    name = field(message, "name")
    if name:
        result["name"] = name
    return result


def chat_messages(scrubber: ContentScrubber, messages: Iterable[Any]) -> list[dict[str, Any]]:
    return [chat_message(scrubber, message) for message in messages]
