"""``POST /v1/chat/completions``: ``chat.completion`` objects and their chunk streams."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from closedloop.testing import _rules
from closedloop.testing._replies import (
    DONE_EVENT,
    IdFactory,
    Reply,
    SSEEvent,
    StreamReply,
    json_reply,
    sse_json,
)

SYSTEM_FINGERPRINT = "fp_closedloop"


@dataclass(frozen=True)
class _Answer:
    """What every choice says: either text (``content``) or a call to ``tool_name``."""

    content: str | None
    tool_name: str | None
    arguments: str
    finish_reason: str
    output_tokens: int


def reply(request: Mapping[str, Any], ids: IdFactory, text: str | None = None) -> Reply:
    """The completion; ``text``, when given, is what the model says instead of the echo."""
    answer = _answer(request, text)
    choices = int(request.get("n") or 1)
    header = {
        "id": ids.new("chatcmpl-"),
        "created": _rules.CREATED,
        "model": _rules.dated_model(str(request.get("model", ""))),
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": "default",
    }
    call_ids = [ids.new("call_") if answer.tool_name else None for _ in range(choices)]
    usage = _usage(request, answer, choices)
    if request.get("stream"):
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return StreamReply(tuple(_stream(header, answer, call_ids, usage, include_usage)))
    return json_reply(
        {
            **header,
            "object": "chat.completion",
            "choices": [
                {
                    "index": index,
                    "message": _message(answer, call_id),
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
                for index, call_id in enumerate(call_ids)
            ],
            "usage": usage,
        }
    )


def _answer(request: Mapping[str, Any], text: str | None) -> _Answer:
    messages = list(request.get("messages") or [])
    user_text = _rules.last_user_text(messages)
    tool_name = _rules.function_tool_name(request)
    # After a tool result the model must answer in text, otherwise agent loops never end.
    if tool_name and not (messages and messages[-1].get("role") == "tool"):
        arguments = _rules.tool_arguments(user_text)
        return _Answer(None, tool_name, arguments, "tool_calls", _rules.count_words(arguments))
    content = _rules.echo(user_text) if text is None else text
    finish_reason = "stop"
    limit = request.get("max_completion_tokens")
    if limit is None:
        limit = request.get("max_tokens")
    if limit is not None and _rules.count_words(content) > limit:
        content = _rules.truncate_words(content, limit)
        finish_reason = "length"
    return _Answer(content, None, "", finish_reason, _rules.count_words(content))


def _usage(request: Mapping[str, Any], answer: _Answer, choices: int) -> dict[str, Any]:
    """Usage summed over all ``n`` choices, like the real API bills them."""
    messages = request.get("messages") or []
    prompt = _rules.prompt_tokens(_rules.content_text(m.get("content")) for m in messages)
    reasoning = _rules.reasoning_tokens(str(request.get("model", ""))) * choices
    completion = answer.output_tokens * choices + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": _rules.cached_tokens(request, prompt),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _message(answer: _Answer, call_id: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": None,
        "annotations": [],
    }
    if call_id is not None:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": answer.arguments},
            }
        ]
    return message


def _stream(
    header: dict[str, Any],
    answer: _Answer,
    call_ids: list[str | None],
    usage: dict[str, Any],
    include_usage: bool,
) -> Iterator[SSEEvent]:
    """Choices one after another, then the optional usage chunk, then ``[DONE]``."""
    base = {**header, "object": "chat.completion.chunk"}
    if include_usage:
        base["usage"] = None
    for index, call_id in enumerate(call_ids):
        for delta, carries_content in _deltas(answer, call_id):
            yield sse_json(_chunk(base, index, delta, None), carries_content=carries_content)
        yield sse_json(_chunk(base, index, {}, answer.finish_reason))
    if include_usage:
        yield sse_json({**base, "choices": [], "usage": usage})
    yield DONE_EVENT


def _chunk(
    base: dict[str, Any], index: int, delta: dict[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**base, "choices": [choice]}


def _deltas(answer: _Answer, call_id: str | None) -> Iterator[tuple[dict[str, Any], bool]]:
    """Deltas shaped like OpenAI's: a role opener, then word pieces or argument fragments."""
    if call_id is None:
        yield {"role": "assistant", "content": "", "refusal": None}, False
        for piece in _rules.split_pieces(answer.content or ""):
            yield {"content": piece}, True
        return
    opener = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": answer.tool_name, "arguments": ""},
    }
    yield {"role": "assistant", "content": None, "refusal": None, "tool_calls": [opener]}, True
    for piece in _rules.split_pieces(answer.arguments):
        yield {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, True
