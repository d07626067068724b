"""The content fast paths write exactly the JSON the general path writes.

One-text messages (request dicts, SDK answers, streamed answers) are written straight to
JSON text instead of building semconv dicts and encoding them. For generated messages of
every shape (one-text or not, odd roles, surrogates, PII, budgets that cut mid-way), the
fast path's text, redaction count, remaining budget and truncation flag must equal the
general path's: ``to_json`` of what ``chat_message`` builds, which the fast path falls
back to for everything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessage
from openai.types.chat.parsed_chat_completion import ParsedChatCompletionMessage

from closedloop.instrumentation.openai._chat import ChatStreamState, _Choice
from closedloop.instrumentation.openai._content import (
    ContentScrubber,
    chat_message,
    chat_messages_json,
    output_message_json,
    to_json,
)
from closedloop.privacy import RedactionPipeline

PIPELINE = RedactionPipeline()
TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            "My parcel has not arrived yet, where is it?",
            "Call +1 415 555 2671 or mail ann.lee@example.com",
            'quotes " and \\ backslashes \n newlines \t tabs \x00',
            "unicode é 用户 \U0001f600 and a lone surrogate \ud800 here",
            "x" * 300,
        ]
    ),
    st.text(max_size=80),
)
ROLE = st.one_of(
    st.sampled_from(["system", "user", "assistant", "developer", "tool"]), st.none(), st.just(7)
)
PART = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
DICT_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": ROLE, "content": TEXT}),
    st.fixed_dictionaries({"role": ROLE, "content": st.one_of(st.none(), st.lists(PART))}),
    st.fixed_dictionaries({"role": ROLE, "content": TEXT, "name": TEXT}),
    st.fixed_dictionaries({"role": st.just("tool"), "content": TEXT, "tool_call_id": TEXT}),
    st.fixed_dictionaries({"content": TEXT}),
)


def sdk_message(
    role: Any, content: Any, *, refusal: Any, tool_calls: bool, name: Any, parsed: bool
) -> Any:
    fields: dict[str, Any] = {"content": content, "refusal": refusal}
    if role is not None:
        fields["role"] = role
    if tool_calls:
        fields["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    if name is not None:
        fields["name"] = name
    model = ParsedChatCompletionMessage if parsed else ChatCompletionMessage
    return model.construct(**fields)


SDK_MESSAGE = st.builds(
    sdk_message,
    role=st.sampled_from(["assistant", None, 3]),
    content=st.one_of(TEXT, st.none()),
    refusal=st.one_of(st.none(), st.just(""), TEXT),
    tool_calls=st.booleans(),
    name=st.one_of(st.none(), st.just(""), TEXT, st.just(5)),
    parsed=st.booleans(),
)
MESSAGES = st.lists(st.one_of(DICT_MESSAGE, SDK_MESSAGE), max_size=5)
LIMIT = st.one_of(st.just(100_000), st.integers(min_value=0, max_value=400))
FINISH = st.one_of(st.none(), st.sampled_from(["stop", "length", 'a "quoted" reason']), st.just(3))


def scrubbers(limit: int) -> tuple[ContentScrubber, ContentScrubber]:
    return ContentScrubber(PIPELINE, limit), ContentScrubber(PIPELINE, limit)


def state(scrubber: ContentScrubber) -> tuple[int, int, bool]:
    return scrubber.count, scrubber.remaining, scrubber.truncated


@settings(max_examples=400, deadline=None)
@given(messages=MESSAGES, limit=LIMIT)
@example(messages=[{"role": "user", "content": "hi"}], limit=100_000)
@example(messages=[], limit=100_000)
def test_request_messages_are_the_general_paths_json(messages: list[Any], limit: int) -> None:
    fast, general = scrubbers(limit)
    written = chat_messages_json(fast, messages)
    expected = [chat_message(general, message) for message in messages]
    assert (written.text if written is not None else None) == (
        to_json(expected) if expected else None
    )
    assert state(fast) == state(general)


def answer(role: Any = "assistant", content: Any = "hi", **changes: Any) -> Any:
    """An SDK answer: a plain text one unless ``changes`` say otherwise."""
    fields = {"refusal": None, "tool_calls": False, "name": None, "parsed": False, **changes}
    return sdk_message(role, content, **fields)


@settings(max_examples=400, deadline=None)
@given(message=st.one_of(SDK_MESSAGE, DICT_MESSAGE), finish=FINISH, limit=LIMIT)
@example(message=answer(), finish="stop", limit=100_000)
@example(message=answer(name="bob"), finish="stop", limit=100_000)
@example(message=answer(refusal="no"), finish="stop", limit=100_000)
@example(message=answer(tool_calls=True), finish="tool_calls", limit=100_000)
@example(message=answer(role=None), finish=None, limit=100_000)
@example(message=answer(content=None), finish="stop", limit=100_000)
@example(message=answer(parsed=True), finish="stop", limit=100_000)
def test_answers_are_the_general_paths_json(message: Any, finish: Any, limit: int) -> None:
    fast, general = scrubbers(limit)
    written = output_message_json(fast, message, finish)
    assert written == to_json({**chat_message(general, message), "finish_reason": finish})
    assert state(fast) == state(general)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(TEXT.filter(bool), max_size=4),
    refusal=st.lists(TEXT.filter(bool), max_size=2),
    tool_call=st.booleans(),
    finish=FINISH,
    limit=LIMIT,
)
def test_streamed_answers_are_the_general_paths_json(
    text: list[str], refusal: list[str], tool_call: bool, finish: Any, limit: int
) -> None:
    choice = _Choice()
    choice.text, choice.refusal, choice.finish_reason = text, refusal, finish
    if tool_call:
        choice.tool_calls[0] = {"id": "call_1", "name": "lookup", "arguments": ['{"q": ', '"x"}']}
    fast, general = scrubbers(limit)
    written = ChatStreamState._message(fast, choice)
    assert written == to_json(ChatStreamState._choice_message(general, choice))
    assert state(fast) == state(general)


@pytest.mark.parametrize("messages", ["hi", b"hi", {"role": "user", "content": "hi"}])
def test_anything_but_a_list_of_messages_records_none(messages: Any) -> None:
    scrubber = ContentScrubber(PIPELINE, 100_000)
    assert chat_messages_json(scrubber, messages) is None
    assert state(scrubber) == (0, 100_000, False)
