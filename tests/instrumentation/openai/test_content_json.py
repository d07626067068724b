"""The content fast paths write exactly the JSON the general path writes.

One-text messages (request dicts, SDK answers, streamed answers) are written straight to
JSON text instead of building semconv dicts and encoding them, and remembered as written
for later calls. For generated messages of
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
    written_messages,
)
from closedloop.privacy import RedactionPipeline

PIPELINE = RedactionPipeline()
# Shared by every example, so later examples find messages earlier ones wrote.
WRITTEN = written_messages(PIPELINE)
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


def scrubbers(limit: int, remembered: bool = False) -> tuple[ContentScrubber, ContentScrubber]:
    """A fast path's scrubber (remembering written messages or not) and the general path's."""
    fast = ContentScrubber(PIPELINE, limit, WRITTEN if remembered else None)
    return fast, ContentScrubber(PIPELINE, limit)


def state(scrubber: ContentScrubber) -> tuple[int, int, bool]:
    return scrubber.count, scrubber.remaining, scrubber.truncated


@settings(max_examples=400, deadline=None)
@given(messages=MESSAGES, limit=LIMIT, remembered=st.booleans())
@example(messages=[{"role": "user", "content": "hi"}], limit=100_000, remembered=False)
@example(messages=[{"role": "user", "content": "hi"}], limit=100_000, remembered=True)
@example(messages=[], limit=100_000, remembered=True)
def test_request_messages_are_the_general_paths_json(
    messages: list[Any], limit: int, remembered: bool
) -> None:
    fast, general = scrubbers(limit, remembered)
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
@given(
    message=st.one_of(SDK_MESSAGE, DICT_MESSAGE),
    finish=FINISH,
    limit=LIMIT,
    remembered=st.booleans(),
)
@example(message=answer(), finish="stop", limit=100_000, remembered=True)
@example(message=answer(name="bob"), finish="stop", limit=100_000, remembered=True)
@example(message=answer(refusal="no"), finish="stop", limit=100_000, remembered=True)
@example(message=answer(tool_calls=True), finish="tool_calls", limit=100_000, remembered=True)
@example(message=answer(role=None), finish=None, limit=100_000, remembered=True)
@example(message=answer(content=None), finish="stop", limit=100_000, remembered=True)
@example(message=answer(parsed=True), finish="stop", limit=100_000, remembered=True)
def test_answers_are_the_general_paths_json(
    message: Any, finish: Any, limit: int, remembered: bool
) -> None:
    fast, general = scrubbers(limit, remembered)
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


CONVERSATION = [
    {"role": "system", "content": "You are a helpful support assistant."},
    {"role": "user", "content": "Call me on +1 415 555 2671 or mail ann.lee@example.com"},
    {"role": "assistant", "content": "I will call you back."},
    {"role": "user", "content": "x" * 40},
]


# Budgets around each message's end (36, 90, 111 and 151 characters) and inside them.
@pytest.mark.parametrize(
    "limit", [100_000, 152, 151, 150, 112, 111, 110, 91, 90, 89, 37, 36, 35, 0]
)
def test_messages_written_before_are_written_again_as_the_general_path_writes_them(
    limit: int,
) -> None:
    # The first round writes and remembers, the second finds them; a budget that ends inside
    # a message cuts that one and the rest as the general path does.
    written = written_messages(PIPELINE)
    for _ in range(2):
        fast = ContentScrubber(PIPELINE, limit, written)
        general = ContentScrubber(PIPELINE, limit)
        found = chat_messages_json(fast, CONVERSATION)
        assert found is not None
        assert found.text == to_json([chat_message(general, m) for m in CONVERSATION])
        assert state(fast) == state(general)


def test_messages_written_before_are_not_redacted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    written = written_messages(PIPELINE)
    first = chat_messages_json(ContentScrubber(PIPELINE, 100_000, written), CONVERSATION)
    redacted: list[str] = []
    redact = RedactionPipeline.redact

    def counting(pipeline: RedactionPipeline, text: str) -> Any:
        redacted.append(text)
        return redact(pipeline, text)

    monkeypatch.setattr(RedactionPipeline, "redact", counting)
    again = ContentScrubber(PIPELINE, 100_000, written)
    assert chat_messages_json(again, CONVERSATION) == first
    assert again.count == 2  # the phone number and the e-mail, counted as the first time
    assert redacted == []


def test_messages_are_not_remembered_for_a_redactor_that_may_answer_differently() -> None:
    calls = []

    def counting(text: str) -> tuple[str, int]:
        calls.append(text)
        return text, 0

    assert written_messages(RedactionPipeline(extra=[counting])) is None
    assert written_messages(RedactionPipeline(remember=False)) is None
    assert written_messages(PIPELINE) is not None
    assert written_messages(None) is not None  # redaction off: JSON of the text alone
