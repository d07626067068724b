"""Chat Completions: request parameters, response fields, and stream accumulation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from opentelemetry.util.types import AttributeValue

from closedloop._cost import TokenUsage
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation.openai._call import ApiType, LLMCall, OperationName
from closedloop.instrumentation.openai._content import (
    ContentScrubber,
    EncodedJson,
    chat_messages_json,
    field,
    json_array,
    output_message_json,
    text_answer_json,
    text_part,
    to_json,
    tool_call_part,
)


def given(kwargs: Mapping[str, Any], name: str) -> Any:
    """A request parameter the caller actually passed (the SDK's ``omit`` means absent)."""
    value = kwargs.get(name)
    if value is None or type(value).__name__ in ("Omit", "NotGiven"):
        return None
    return value


def materialized(kwargs: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """A copy of ``kwargs`` whose one-shot iterators (generators, ``map``...) are lists, so
    closedloop can read them and the SDK still gets every item. Anything re-iterable
    (lists, tuples, mappings, sets) reaches the SDK exactly as the caller passed it."""
    prepared = dict(kwargs)
    for name in names:
        value = prepared.get(name)
        if isinstance(value, Iterator):
            prepared[name] = list(value)
    return prepared


def number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def tool_names(tools: Iterable[Any] | None) -> list[str]:
    """Names of the function/custom tools a request defines."""
    names: list[str] = []
    for tool in tools or ():
        function = field(tool, "function")
        name = field(function, "name") if function is not None else field(tool, "name")
        if isinstance(name, str):
            names.append(name)
    return names


# ``response_format`` / ``text.format`` types and the ``gen_ai.output.type`` they mean.
OUTPUT_TYPES = {"json_object": "json", "json_schema": "json", "text": "text"}


def output_type(response_format: Any) -> str | None:
    if isinstance(response_format, type):  # ``.parse(response_format=MyModel)``
        return "json"
    kind = field(response_format, "type") if response_format is not None else None
    return OUTPUT_TYPES.get(kind) if isinstance(kind, str) else None


def chat_usage(usage: Any) -> tuple[TokenUsage, int | None]:
    prompt = field(usage, "prompt_tokens") or 0
    completion = field(usage, "completion_tokens") or 0
    cached = field(field(usage, "prompt_tokens_details"), "cached_tokens") or 0
    reasoning = field(field(usage, "completion_tokens_details"), "reasoning_tokens")
    return TokenUsage(prompt, completion, cached), reasoning


# The request parameters that become span attributes besides ``stream``.
_ATTRIBUTE_PARAMETERS = frozenset(
    {
        *("temperature", "top_p", "max_completion_tokens", "max_tokens", "seed"),
        *("frequency_penalty", "presence_penalty", "stop", "response_format"),
        *("service_tier", "n", "tools"),
    }
)


class ChatCompletions:
    """``chat.completions.create``."""

    operation_name: OperationName = "chat"
    api_type: ApiType | None = "chat_completions"
    has_output_tokens = True

    def prepare(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return materialized(kwargs, "messages", "tools")

    response_type = ChatCompletion
    stream_item_type = ChatCompletionChunk

    def with_stream_usage(self, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        if given(kwargs, "stream") is not True:
            return None
        if given(kwargs, "stream_options") is not None:
            return None  # the caller chose the stream's options: theirs to keep, refusal too
        return {**kwargs, "stream_options": {"include_usage": True}}

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
        if _ATTRIBUTE_PARAMETERS.isdisjoint(kwargs):  # model and messages alone: the commonest
            return {attr.REQUEST_STREAM: kwargs.get("stream") is True}
        stop = given(kwargs, "stop")
        values: dict[str, Any] = {
            attr.REQUEST_STREAM: given(kwargs, "stream") is True,
            attr.REQUEST_TEMPERATURE: number(given(kwargs, "temperature")),
            attr.REQUEST_TOP_P: number(given(kwargs, "top_p")),
            attr.REQUEST_MAX_TOKENS: number(
                given(kwargs, "max_completion_tokens") or given(kwargs, "max_tokens")
            ),
            attr.REQUEST_SEED: number(given(kwargs, "seed")),
            attr.REQUEST_FREQUENCY_PENALTY: number(given(kwargs, "frequency_penalty")),
            attr.REQUEST_PRESENCE_PENALTY: number(given(kwargs, "presence_penalty")),
            attr.REQUEST_STOP_SEQUENCES: [stop] if isinstance(stop, str) else stop,
            attr.OUTPUT_TYPE: output_type(given(kwargs, "response_format")),
            attr.OPENAI_REQUEST_SERVICE_TIER: given(kwargs, "service_tier"),
        }
        choices = number(given(kwargs, "n"))
        if choices is not None and choices != 1:
            values[attr.REQUEST_CHOICE_COUNT] = choices
        defined = tool_names(given(kwargs, "tools"))
        if defined:
            values[attr.TOOLS_DEFINED] = defined
        return {key: value for key, value in values.items() if value is not None}

    def input_content(
        self, kwargs: Mapping[str, Any], scrubber: ContentScrubber
    ) -> dict[str, EncodedJson | None]:
        return {attr.INPUT_MESSAGES: chat_messages_json(scrubber, given(kwargs, "messages") or ())}

    def record_response(self, call: LLMCall, response: Any) -> None:
        choices = response.choices or []
        call.set(
            {
                attr.RESPONSE_ID: response.id,
                attr.RESPONSE_MODEL: response.model,
                attr.RESPONSE_FINISH_REASONS: [str(c.finish_reason) for c in choices],
                attr.OPENAI_RESPONSE_SERVICE_TIER: response.service_tier,
                attr.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: response.system_fingerprint,
            }
        )
        if response.usage is not None:
            usage, reasoning = chat_usage(response.usage)
            call.record_usage(usage, reasoning, response.model)
        called = [
            call_.function.name
            for choice in choices
            for call_ in (choice.message.tool_calls or ())
            if getattr(call_, "function", None) is not None
        ]
        call.add_tools_called(called)
        scrubber = call.output_scrubber()
        if scrubber is not None:
            answers = [
                output_message_json(scrubber, choice.message, choice.finish_reason)
                for choice in choices
            ]
            call.record_output(json_array(answers) if answers else None)

    def measure(self, call: LLMCall, response: Any) -> None:
        usage = chat_usage(response.usage)[0] if response.usage is not None else None
        call.measured(response.model, usage, response.id)

    def stream_state(self, hide_usage_chunk: bool, recording: bool) -> ChatStreamMeter:
        if recording:
            return ChatStreamState(hide_usage_chunk)
        return ChatStreamMeter(hide_usage_chunk)


class _Choice:
    __slots__ = ("finish_reason", "refusal", "text", "tool_calls")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.finish_reason: str | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}


def _observe_tool_calls(state: _Choice, tool_calls: Iterable[Any]) -> None:
    """Tool calls arrive in pieces: an id and a name once, the arguments bit by bit."""
    for tool_call in tool_calls:
        slot = state.tool_calls.setdefault(
            tool_call.index, {"id": None, "name": None, "arguments": []}
        )
        slot["id"] = slot["id"] or tool_call.id
        if tool_call.function is not None:
            slot["name"] = slot["name"] or tool_call.function.name
            if tool_call.function.arguments:
                slot["arguments"].append(tool_call.function.arguments)


class ChatStreamMeter:
    """What the metrics need from a chat stream (its model, and usage from the final
    chunk), and its response id for feedback: all that is kept of a stream whose span is
    not recording."""

    content_started = False  # no span: no time to first chunk

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None

    def observe(self, chunk: Any) -> None:
        self.response_id = self.response_id or chunk.id
        self.model = self.model or chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage

    def conceal(self, chunk: Any) -> bool:
        """Undo ``include_usage`` when closedloop asked for it and the caller did not.

        The usage-only chunk (``choices`` empty or null) is hidden; on any other chunk the
        ``usage`` field (null, or usage a provider put on a content chunk) is removed, so
        the chunk's values and its set fields are what the caller would otherwise get.
        """
        if not self.hide_usage_chunk:
            return False
        if not chunk.choices and chunk.usage is not None:
            return True
        if chunk.usage is not None:
            chunk.usage = None
        chunk.__pydantic_fields_set__.discard("usage")
        return False

    def finish(self, call: LLMCall) -> None:
        usage = chat_usage(self.usage)[0] if self.usage is not None else None
        call.measured(self.model, usage, self.response_id)


class ChatStreamState(ChatStreamMeter):
    """Rebuilds what a chat stream delivered, choice by choice, from its chunks."""

    def __init__(self, hide_usage_chunk: bool) -> None:
        super().__init__(hide_usage_chunk)
        self.service_tier: str | None = None
        self.system_fingerprint: str | None = None
        self.choices: dict[int, _Choice] = {}
        self.content_started = False

    def observe(self, chunk: Any) -> None:
        # One flat method: it runs for every chunk of every stream. Each field is read
        # once, and stored only when it changes what the span will show.
        if not self.response_id:
            self.response_id = chunk.id
        if not self.model:
            self.model = chunk.model
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        service_tier = chunk.service_tier
        if service_tier:
            self.service_tier = service_tier
        fingerprint = chunk.system_fingerprint
        if fingerprint:
            self.system_fingerprint = fingerprint
        choices = self.choices
        for choice in chunk.choices or ():
            state = choices.get(choice.index)
            if state is None:
                state = choices[choice.index] = _Choice()
            delta = choice.delta
            if delta is not None:
                content = delta.content
                if content:
                    state.text.append(content)
                    self.content_started = True
                if delta.refusal:
                    state.refusal.append(delta.refusal)
                    self.content_started = True
                if delta.tool_calls:
                    self.content_started = True
                    _observe_tool_calls(state, delta.tool_calls)
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason

    def finish(self, call: LLMCall) -> None:
        ordered = [self.choices[index] for index in sorted(self.choices)]
        call.set(
            {
                attr.RESPONSE_ID: self.response_id,
                attr.RESPONSE_MODEL: self.model,
                attr.RESPONSE_FINISH_REASONS: [str(c.finish_reason) for c in ordered]
                if any(c.finish_reason for c in ordered)
                else None,
                attr.OPENAI_RESPONSE_SERVICE_TIER: self.service_tier,
                attr.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: self.system_fingerprint,
            }
        )
        if self.usage is not None:
            usage, reasoning = chat_usage(self.usage)
            call.record_usage(usage, reasoning, self.model)
        call.add_tools_called(
            [slot["name"] for c in ordered for slot in c.tool_calls.values() if slot["name"]]
        )
        scrubber = call.output_scrubber()
        if scrubber is not None:
            answers = [self._message(scrubber, c) for c in ordered]
            call.record_output(json_array(answers) if answers else None)

    @staticmethod
    def _message(scrubber: ContentScrubber, choice: _Choice) -> str:
        """The JSON of what one choice delivered: written directly when it is text alone."""
        if choice.text and not choice.refusal and not choice.tool_calls:
            return text_answer_json(
                scrubber, "assistant", "".join(choice.text), choice.finish_reason
            )
        return to_json(ChatStreamState._choice_message(scrubber, choice))

    @staticmethod
    def _choice_message(scrubber: ContentScrubber, choice: _Choice) -> dict[str, Any]:
        """What one choice delivered as a semconv message, any mix of parts."""
        parts: list[dict[str, Any]] = []
        if choice.text:
            parts.append(text_part(scrubber, "".join(choice.text)))
        if choice.refusal:
            parts.append({"type": "refusal", "content": scrubber.text("".join(choice.refusal))})
        for index in sorted(choice.tool_calls):
            slot = choice.tool_calls[index]
            parts.append(
                tool_call_part(scrubber, slot["id"], slot["name"], "".join(slot["arguments"]))
            )
        return {"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason}
