"""Deterministic stand-ins for what a model decides: output text, token counts, tool calls.

Everything is derived from the request alone so tests can predict it without a tokenizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

ECHO_PREFIX = "Echo: "
TOKENS_PER_MESSAGE = 4
REASONING_TOKENS = 8
SNAPSHOT_SUFFIX = "-2024-07-18"
# A fixed timestamp keeps whole payloads byte-for-byte reproducible.
CREATED = 1_721_260_800

_DATED_MODEL = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_REASONING_MODEL = re.compile(r"^o\d")
# Leading-space word pieces, like real BPE tokens (" world"); the final piece keeps any
# trailing whitespace so the pieces always concatenate back to the original text.
_PIECE = re.compile(r"\s*\S+\s*$|\s*\S+|\s+$")


def count_words(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def split_pieces(text: str) -> list[str]:
    """Split text into word-sized stream deltas whose concatenation is exactly ``text``."""
    return _PIECE.findall(text)


def truncate_words(text: str, limit: int) -> str:
    """Keep the first ``limit`` words, as a model cut off by ``max_tokens`` would."""
    return "".join(split_pieces(text)[:limit])


def content_text(content: object) -> str:
    """Text of a message ``content``: a plain string or a list of typed parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: Iterable[Any]) -> str:
    """Text of the most recent user message, which the fake model echoes."""
    for message in reversed(list(messages)):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def echo(text: str) -> str:
    return ECHO_PREFIX + text


def prompt_tokens(texts: Iterable[str]) -> int:
    """Words across all messages plus a fixed per-message overhead, like chat formatting."""
    return sum(count_words(text) + TOKENS_PER_MESSAGE for text in texts)


def cached_tokens(request: Mapping[str, Any], prompt: int) -> int:
    """Half the prompt is 'cached' when the caller opts into caching with a cache key."""
    return prompt // 2 if "prompt_cache_key" in request else 0


def reasoning_tokens(model: str) -> int:
    """o-series models (o1, o3, o4-mini, ...) spend a fixed number of hidden reasoning tokens."""
    return REASONING_TOKENS if _REASONING_MODEL.match(model) else 0


def dated_model(model: str) -> str:
    """Resolve an alias to a dated snapshot, as the real API reports the served model."""
    return model if _DATED_MODEL.search(model) else model + SNAPSHOT_SUFFIX


def function_tool_name(request: Mapping[str, Any]) -> str | None:
    """Name of the first function tool the model may call, or None to answer in text."""
    if request.get("tool_choice") == "none":
        return None
    for tool in request.get("tools") or []:
        if isinstance(tool, Mapping) and tool.get("type") == "function":
            # Chat Completions nests the definition under "function"; Responses is flat.
            function = tool.get("function")
            return str(function["name"] if isinstance(function, Mapping) else tool["name"])
    return None


def tool_arguments(user_text: str) -> str:
    return json.dumps({"query": user_text})
