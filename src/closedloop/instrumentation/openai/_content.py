"""Message content in the GenAI semantic-convention shape, redacted string by string.

Redaction happens on each string before it is serialised, so a placeholder can never
break the JSON and no raw content ever reaches a span attribute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionMessage

from closedloop._text_memory import TextMemory
from closedloop.privacy import RedactionPipeline

# Whether a type is a Mapping, per type: an ABC ``isinstance`` check on an SDK model costs
# more than the read itself, and messages are read field by field.
_IS_MAPPING: dict[type, bool] = {dict: True}


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a TypedDict-style mapping or an SDK model alike."""
    kind = type(obj)
    is_mapping = _IS_MAPPING.get(kind)
    if is_mapping is None:
        is_mapping = _IS_MAPPING[kind] = isinstance(obj, Mapping)
    if is_mapping:
        return obj.get(name, default)
    return getattr(obj, name, default)


# Appended where content was cut at the size limit (placeholder-shaped, like ``<EMAIL>``).
TRUNCATION_MARK = "<TRUNCATED>"
# Longer than any built-in entity (an e-mail is at most 64 + 1 + 255 characters): text this
# close to a cut may hold an entity the cut split, so it is dropped after redaction.
_CUT_MARGIN = 512
# A run without whitespace this long at the cut is dropped whole (a JWT, a key); longer
# runs are text in a script without spaces, cut where the budget ends.
_MAX_TOKEN = 8_192
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 encoder accepts) replaced by U+FFFD."""
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


class ContentScrubber:
    """Bounds, cleans and redacts every string it is given, and counts what it did.

    Each content attribute is a *section* with its own budget of ``limit`` characters:
    strings beyond it are cut (and marked), so redaction time is bounded whatever the
    app sends, and one huge input cannot crowd the output off the span.
    """

    __slots__ = ("count", "limit", "redactor", "remaining", "truncated", "written")

    def __init__(
        self,
        redactor: RedactionPipeline | None,
        limit: int,
        written: WrittenMessages | None = None,
    ) -> None:
        self.redactor = redactor
        self.count = 0
        self.limit = limit
        self.remaining = limit
        self.truncated = False
        # One-text messages already written with ``redactor`` (None: write each anew).
        self.written = written

    def section(self) -> ContentScrubber:
        """Start the next content attribute with a full budget."""
        self.remaining = self.limit
        return self

    def text(self, value: str) -> str:
        if not value:
            return value
        if len(value) > self.remaining:
            return self._cut(value)
        self.remaining -= len(value)
        return self._redact(clean(value))

    def _redact(self, value: str) -> str:
        if self.redactor is None:
            return value
        result = self.redactor.redact(value)
        self.count += result.count
        return result.text

    def _cut(self, value: str) -> str:
        """The head of an over-budget string, redacted, then marked as truncated.

        Redaction runs over a margin past the cut and the margin is dropped afterwards, so
        an entity the cut would split is replaced whole or not kept. A token the final cut
        still splits (a JWT longer than the margin) is dropped back to the last whitespace,
        so no secret's head is kept without its tail.
        """
        self.truncated = True
        keep, self.remaining = self.remaining, 0
        if keep <= 0:
            return TRUNCATION_MARK
        head = clean(value[: keep + _CUT_MARGIN])
        if self.redactor is not None:
            head = self._redact(head)
            keep = min(keep, len(head) - _CUT_MARGIN)
        kept = head[: max(0, keep)]
        if kept and not kept[-1].isspace() and len(head) > len(kept):
            split_token = kept[-_MAX_TOKEN:].rsplit(None, 1)[-1]
            if len(split_token) < _MAX_TOKEN:  # longer runs (unspaced scripts) are not tokens
                kept = kept[: len(kept) - len(split_token)]
        return kept + TRUNCATION_MARK

    def value(self, value: Any) -> Any:
        """Redact the strings inside a JSON-like value, keeping its structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            scrubbed: dict[Any, Any] = {}
            for key, item in value.items():
                name = self.text(key) if isinstance(key, str) else key
                while name in scrubbed:  # two keys redacted alike: keep both values
                    name = f"{name}#"
                scrubbed[name] = self.value(item)
            return scrubbed
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


# Built once: ``json.dumps`` with options builds an encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
# How that encoder writes a string (``ensure_ascii=False``): the fast paths below use it to
# write the commonest messages directly, byte for byte as the encoder would.
_string = json.encoder.encode_basestring


@dataclass(frozen=True, slots=True)
class EncodedJson:
    """JSON text written directly by a fast path, set on the span as it is."""

    text: str


def to_json(value: Any) -> str:
    if type(value) is EncodedJson:
        return value.text
    return _ENCODER.encode(value)


def text_part(scrubber: ContentScrubber, text: str) -> dict[str, Any]:
    return {"type": "text", "content": scrubber.text(text)}


def tool_call_part(
    scrubber: ContentScrubber, call_id: Any, name: Any, arguments: Any
) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": scrubber.text(call_id) if isinstance(call_id, str) else call_id,
        "name": scrubber.text(name) if isinstance(name, str) else name,
        "arguments": scrubber.arguments(arguments),
    }


def _media_part(scrubber: ContentScrubber, part: Any, kind: str) -> dict[str, Any]:
    """Images, audio and files: record what was sent, never the bytes or data URLs.

    A URL is content like any other (``?email=...``), so it passes the redactor too."""
    if kind in ("image_url", "input_image"):
        image = field(part, "image_url")
        url = field(image, "url") if image is not None and not isinstance(image, str) else image
        if isinstance(url, str) and not url.startswith("data:"):
            return {"type": "uri", "modality": "image", "uri": scrubber.text(url)}
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
            parts.append(_media_part(scrubber, part, kind))
    return parts


def _tool_response(scrubber: ContentScrubber, content: Any) -> str:
    """A tool result as one string (the SDK allows a string or a list of text parts)."""
    if isinstance(content, str):
        return scrubber.text(content)
    return " ".join(part.get("content", "") for part in content_parts(scrubber, content))


def chat_message(scrubber: ContentScrubber, message: Any) -> dict[str, Any]:
    """One Chat Completions message (request or response side) as a semconv message; the
    one-text messages most calls carry take ``_text_message``'s way round this."""
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
    if isinstance(name, str) and name:
        result["name"] = scrubber.text(name)
    return result


def _text_message(message: Any) -> tuple[str, str] | None:
    """(role, text) of a message that is one text and nothing else, the commonest kind:
    a ``{"role", "content"}`` dict that is no tool result, or an SDK response message
    without refusal, tool calls or name. None for anything else."""
    kind = type(message)
    if kind is dict:
        if len(message) == 2:  # with both strings below: exactly "role" and "content"
            role, content = message.get("role"), message.get("content")
            if type(role) is str and role != "tool" and type(content) is str:
                return role, content
        return None
    if kind is ChatCompletionMessage:
        extra = message.__pydantic_extra__
        if message.refusal or message.tool_calls or (extra and extra.get("name")):
            return None
        role, content = getattr(message, "role", None), message.content
        if type(role) is str and type(content) is str:
            return role, content
    return None


def _open_text_message(scrubber: ContentScrubber, role: str, text: str) -> str:
    """``to_json(chat_message(...))`` of a one-text message, written directly, without
    its closing brace (an answer adds its finish reason first). A message written before
    is taken as it was written when the budget holds all of it, as it then would again."""
    written = scrubber.written
    if written is not None and len(text) <= scrubber.remaining:
        fragment, count = written(text, role)
        scrubber.remaining -= len(text)
        scrubber.count += count
        return fragment
    return _text_message_fragment(role, scrubber.text(text))


def _text_message_fragment(role: str, content: str) -> str:
    return f'{{"role":{_string(role)},"parts":[{{"type":"text","content":{_string(content)}}}]'


# One-text messages as ``_open_text_message`` writes them, with their redaction counts.
WrittenMessages = TextMemory[tuple[str, int]]


def written_messages(redactor: RedactionPipeline | None) -> WrittenMessages | None:
    """A memory of one-text messages written with ``redactor``, per (text, role): apps send
    the system prompt on every call and the whole conversation on every turn. None when
    the redactor's results may change from call to call (not a function of the text)."""
    if redactor is not None and not redactor.remembers:
        return None

    def write(text: str, role: str) -> tuple[str, int]:
        if redactor is None:
            return _text_message_fragment(role, clean(text)), 0
        # Not through the pipeline's own memory: this one keeps the text already.
        result = redactor.redact_anew(clean(text))
        return _text_message_fragment(role, result.text), result.count

    return TextMemory(write)


def chat_messages_json(scrubber: ContentScrubber, messages: Iterable[Any]) -> EncodedJson | None:
    """The messages as a JSON array, None for none. One-text messages are written directly
    (no dicts built, no encoder walk), the others as ``chat_message`` builds them. Anything
    but a list of messages (a mapping, a string) is the SDK's to refuse: None."""
    if isinstance(messages, (str, bytes, Mapping)):
        return None
    fragments: list[str] = []
    for message in messages:
        simple = _text_message(message)
        if simple is None:
            fragments.append(to_json(chat_message(scrubber, message)))
        else:
            fragments.append(f"{_open_text_message(scrubber, *simple)}}}")
    return json_array(fragments) if fragments else None


def output_message_json(scrubber: ContentScrubber, message: Any, finish_reason: Any) -> str:
    """``to_json`` of an answer's message with its ``finish_reason`` after the parts."""
    simple = _text_message(message)
    if simple is None:
        return to_json({**chat_message(scrubber, message), "finish_reason": finish_reason})
    return text_answer_json(scrubber, *simple, finish_reason)


def text_answer_json(scrubber: ContentScrubber, role: str, text: str, finish_reason: Any) -> str:
    """``to_json`` of a one-text answer with its ``finish_reason``, written directly when
    the reason is a string or None (always, from the SDK)."""
    if finish_reason is None:
        reason = "null"
    elif type(finish_reason) is str:
        reason = _string(finish_reason)
    else:
        text_message = {"role": role, "parts": [text_part(scrubber, text)]}
        return to_json({**text_message, "finish_reason": finish_reason})
    return f'{_open_text_message(scrubber, role, text)},"finish_reason":{reason}}}'


def json_array(fragments: list[str]) -> EncodedJson:
    """Encoded JSON values as one JSON array."""
    return EncodedJson(f"[{','.join(fragments)}]")
