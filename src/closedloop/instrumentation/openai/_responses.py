"""Responses API: request parameters, the response object, and stream events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent
from opentelemetry.util.types import AttributeValue

from closedloop._cost import TokenUsage
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation.openai._call import ApiType, LLMCall, OperationName
from closedloop.instrumentation.openai._chat import (
    OUTPUT_TYPES,
    given,
    materialized,
    number,
    tool_names,
)
from closedloop.instrumentation.openai._content import (
    ContentScrubber,
    content_parts,
    field,
    text_part,
    tool_call_part,
)

_CALL_ITEMS = ("function_call", "custom_tool_call")
_CONTENT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.audio.delta",
        "response.audio.transcript.delta",
    }
)
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _input_item(scrubber: ContentScrubber, item: Any) -> dict[str, Any] | None:
    kind = field(item, "type")
    if kind in _CALL_ITEMS:
        arguments = field(item, "arguments") if kind == "function_call" else field(item, "input")
        return {
            "role": "assistant",
            "parts": [
                tool_call_part(scrubber, field(item, "call_id"), field(item, "name"), arguments)
            ],
        }
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = field(item, "output")
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": field(item, "call_id"),
                    "response": scrubber.value(output),
                }
            ],
        }
    role = field(item, "role")
    if role is None:
        return None
    return {"role": role, "parts": content_parts(scrubber, field(item, "content"))}


def _format_type(text: Any) -> str | None:
    """``gen_ai.output.type`` from the request's ``text.format``."""
    kind = field(field(text, "format"), "type") if text is not None else None
    return OUTPUT_TYPES.get(kind) if isinstance(kind, str) else None


def responses_usage(usage: Any) -> tuple[TokenUsage, int | None]:
    cached = field(field(usage, "input_tokens_details"), "cached_tokens") or 0
    reasoning = field(field(usage, "output_tokens_details"), "reasoning_tokens")
    return TokenUsage(usage.input_tokens or 0, usage.output_tokens or 0, cached), reasoning


def finish_reason(response: Any) -> str:
    """Chat-style finish reason for a Responses object, so both APIs aggregate alike."""
    status = response.status
    if status == "incomplete":
        reason = field(response.incomplete_details, "reason")
        return "length" if reason == "max_output_tokens" else str(reason or status)
    if status == "failed":
        return "error"
    if any(field(item, "type") in _CALL_ITEMS for item in response.output or ()):
        return "tool_calls"
    return "stop" if status == "completed" else str(status)


class Responses:
    """``responses.create``."""

    operation_name: OperationName = "chat"
    api_type: ApiType | None = "responses"
    has_output_tokens = True

    def prepare(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return materialized(kwargs, "input", "tools")

    response_type = Response
    stream_item_type = ResponseStreamEvent

    def with_stream_usage(self, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        return None  # Responses streams always end with the whole response, usage included

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
        text = given(kwargs, "text")
        values: dict[str, Any] = {
            attr.REQUEST_STREAM: given(kwargs, "stream") is True,
            attr.REQUEST_TEMPERATURE: number(given(kwargs, "temperature")),
            attr.REQUEST_TOP_P: number(given(kwargs, "top_p")),
            attr.REQUEST_MAX_TOKENS: number(given(kwargs, "max_output_tokens")),
            attr.OPENAI_REQUEST_SERVICE_TIER: given(kwargs, "service_tier"),
            attr.OUTPUT_TYPE: _format_type(text),
        }
        defined = tool_names(given(kwargs, "tools"))
        if defined:
            values[attr.TOOLS_DEFINED] = defined
        return {key: value for key, value in values.items() if value is not None}

    def input_content(self, kwargs: Mapping[str, Any], scrubber: ContentScrubber) -> dict[str, Any]:
        instructions = given(kwargs, "instructions")
        items = given(kwargs, "input")
        if isinstance(items, str):
            messages = [{"role": "user", "parts": [text_part(scrubber, items)]}]
        else:
            converted = (_input_item(scrubber, item) for item in items or ())
            messages = [message for message in converted if message is not None]
        return {
            attr.SYSTEM_INSTRUCTIONS: [text_part(scrubber, instructions)] if instructions else None,
            attr.INPUT_MESSAGES: messages,
        }

    def record_response(self, call: LLMCall, response: Any) -> None:
        call.set(
            {
                attr.RESPONSE_ID: response.id,
                attr.RESPONSE_MODEL: response.model,
                attr.RESPONSE_FINISH_REASONS: [finish_reason(response)],
                attr.OPENAI_RESPONSE_SERVICE_TIER: response.service_tier,
            }
        )
        if response.usage is not None:
            usage, reasoning = responses_usage(response.usage)
            call.record_usage(usage, reasoning, response.model)
        output = response.output or []
        call.add_tools_called([item.name for item in output if field(item, "type") in _CALL_ITEMS])
        if response.status == "failed":
            error = response.error
            call.mark_failed(str(field(error, "code") or "failed"), field(error, "message"))
        scrubber = call.output_scrubber()
        if scrubber is not None:
            call.record_output([self._output_message(scrubber, response, output)])

    @staticmethod
    def _output_message(
        scrubber: ContentScrubber, response: Any, output: list[Any]
    ) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        for item in output:
            kind = field(item, "type")
            if kind == "message":
                parts.extend(content_parts(scrubber, item.content))
            elif kind in _CALL_ITEMS:
                arguments = item.arguments if kind == "function_call" else item.input
                parts.append(tool_call_part(scrubber, item.call_id, item.name, arguments))
        return {"role": "assistant", "parts": parts, "finish_reason": finish_reason(response)}

    def measure(self, call: LLMCall, response: Any) -> None:
        usage = responses_usage(response.usage)[0] if response.usage is not None else None
        call.measured(response.model, usage, response.id)
        if response.status == "failed":
            call.mark_failed(str(field(response.error, "code") or "failed"), None)

    def stream_state(self, hide_usage_chunk: bool, recording: bool) -> ResponsesStreamState:
        return ResponsesStreamState(self)


class ResponsesStreamState:
    """Responses streams end with the whole response object: record that one, or only
    measure it when the span is not recording (what is kept per event is light either way)."""

    def __init__(self, operation: Responses) -> None:
        self.operation = operation
        self.final: Any = None
        self.partial: Any = None
        self.content_started = False

    def observe(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind in _CONTENT_DELTAS:
            self.content_started = True
        elif kind in _FINAL_EVENTS:
            self.final = event.response
        elif kind in ("response.created", "response.in_progress"):
            self.partial = event.response

    def conceal(self, event: Any) -> bool:
        return False  # closedloop never changes a Responses request

    def finish(self, call: LLMCall) -> None:
        if self.final is not None:
            if call.recording:
                self.operation.record_response(call, self.final)
            else:
                self.operation.measure(call, self.final)
        elif self.partial is not None:
            call.set({attr.RESPONSE_ID: self.partial.id, attr.RESPONSE_MODEL: self.partial.model})
