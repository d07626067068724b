"""``POST /v1/responses``: ``response`` objects and the Responses API's typed event stream."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from closedloop.testing import _rules
from closedloop.testing._replies import (
    IdFactory,
    Reply,
    SSEEvent,
    StreamReply,
    json_reply,
    sse_json,
)


def reply(request: Mapping[str, Any], ids: IdFactory, text: str | None = None) -> Reply:
    """The response; ``text``, when given, is what the model says instead of the echo."""
    items = _input_items(request)
    item = _output_item(request, items, ids, text)
    output_text = item["arguments"] if item["type"] == "function_call" else _text_of(item)
    response = _response(request, ids.new("resp_"), item, _usage(request, items, output_text))
    if request.get("stream"):
        return StreamReply(tuple(_stream(response, item)))
    return json_reply(response)


def _input_items(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``input`` as a list of items; a bare string is shorthand for one user message."""
    raw = request.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return list(raw or [])


def _output_item(
    request: Mapping[str, Any], items: list[Mapping[str, Any]], ids: IdFactory, text: str | None
) -> dict[str, Any]:
    user_text = _rules.last_user_text(items)
    tool_name = _rules.function_tool_name(request)
    # After a function result the model answers in text, otherwise agent loops never end.
    if tool_name and not (items and items[-1].get("type") == "function_call_output"):
        return {
            "id": ids.new("fc_"),
            "type": "function_call",
            "status": "completed",
            "call_id": ids.new("call_"),
            "name": tool_name,
            "arguments": _rules.tool_arguments(user_text),
        }
    return {
        "id": ids.new("msg_"),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [_text_part(_rules.echo(user_text) if text is None else text)],
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _text_of(message: Mapping[str, Any]) -> str:
    return str(message["content"][0]["text"])


def _usage(
    request: Mapping[str, Any], items: list[Mapping[str, Any]], output_text: str
) -> dict[str, Any]:
    """Chat's counting rules; ``instructions`` and function outputs count as messages."""
    instructions = request.get("instructions")
    texts = [instructions] if isinstance(instructions, str) else []
    texts += [_rules.content_text(item.get("content", item.get("output"))) for item in items]
    prompt = _rules.prompt_tokens(texts)
    reasoning = _rules.reasoning_tokens(str(request.get("model", "")))
    output = _rules.count_words(output_text) + reasoning
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _rules.cached_tokens(request, prompt),
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


def _response(
    request: Mapping[str, Any], response_id: str, item: dict[str, Any], usage: dict[str, Any]
) -> dict[str, Any]:
    """A completed ``response`` echoing request settings, as the real API does."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": _rules.CREATED,
        "completed_at": _rules.CREATED,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": _rules.dated_model(str(request.get("model", ""))),
        "output": [item],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage,
        "user": request.get("user"),
    }


class _Sequencer:
    """Builds typed events with the monotonically increasing ``sequence_number`` clients check."""

    def __init__(self) -> None:
        self._numbers = itertools.count()

    def __call__(
        self, event_type: str, *, carries_content: bool = False, **fields: Any
    ) -> SSEEvent:
        payload = {"type": event_type, "sequence_number": next(self._numbers), **fields}
        return sse_json(payload, event=event_type, carries_content=carries_content)


def _stream(response: dict[str, Any], item: dict[str, Any]) -> Iterator[SSEEvent]:
    """The event order the real API emits for a single output item."""
    event = _Sequencer()
    pending = {**response, "status": "in_progress", "completed_at": None, "output": []}
    pending["usage"] = None
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    if item["type"] == "function_call":
        yield event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "arguments": ""},
        )
        yield from _function_call_events(event, item)
    else:
        yield event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        yield from _message_events(event, item)
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=response)


def _message_events(event: _Sequencer, item: dict[str, Any]) -> Iterator[SSEEvent]:
    text = _text_of(item)
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    yield event("response.content_part.added", **where, part=_text_part(""))
    for piece in _rules.split_pieces(text):
        yield event(
            "response.output_text.delta", carries_content=True, **where, delta=piece, logprobs=[]
        )
    yield event("response.output_text.done", **where, text=text, logprobs=[])
    yield event("response.content_part.done", **where, part=_text_part(text))


def _function_call_events(event: _Sequencer, item: dict[str, Any]) -> Iterator[SSEEvent]:
    where = {"item_id": item["id"], "output_index": 0}
    for piece in _rules.split_pieces(item["arguments"]):
        yield event(
            "response.function_call_arguments.delta", carries_content=True, **where, delta=piece
        )
    yield event("response.function_call_arguments.done", **where, arguments=item["arguments"])
