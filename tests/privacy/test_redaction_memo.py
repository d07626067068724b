"""A pipeline that remembers recent texts answers exactly as one that redacts every time.

Remembering is only for pipelines whose redactors depend on the text alone (the built-in
ones and ``RegexRedactor``); a pipeline with any other callable runs it on every call.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop._text_memory import LONG_TEXT, SHORT_TEXT
from closedloop.privacy import RedactionPipeline, RegexRedactor

PII = st.sampled_from(
    ["+1 415 555 2671", "ann.lee@example.com", "4111 1111 1111 1111", "10.0.12.7", " ", "a"]
)
TEXTS = st.lists(st.one_of(PII, st.text(max_size=12)), max_size=10).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXTS, max_size=6))
def test_remembered_results_equal_fresh_ones(texts: list[str]) -> None:
    remembering, fresh = RedactionPipeline(), RedactionPipeline(remember=False)
    for text in texts + texts:  # each text again: the second time it is remembered
        assert remembering.redact(text) == fresh.redact(text)


def test_texts_at_each_size_bound_are_redacted_alike() -> None:
    remembering, fresh = RedactionPipeline(), RedactionPipeline(remember=False)
    for size in (SHORT_TEXT, SHORT_TEXT + 1, LONG_TEXT, LONG_TEXT + 1):
        text = ("call +1 415 555 2671 " * (size // 20 + 1))[:size]
        for _ in range(2):
            assert remembering.redact(text) == fresh.redact(text)


def test_a_str_subclass_is_redacted_without_being_remembered() -> None:
    class Tagged(str):
        pass

    pipeline = RedactionPipeline()
    result = pipeline.redact(Tagged("mail ann.lee@example.com"))
    assert (result.text, result.count) == ("mail <EMAIL>", 1)


def test_a_custom_redactor_runs_on_every_call() -> None:
    seen: list[str] = []

    def employee_ids(text: str) -> tuple[str, int]:
        seen.append(text)
        return text.replace("EMP-1", "<EMPLOYEE>"), text.count("EMP-1")

    pipeline = RedactionPipeline(extra=[employee_ids])
    for _ in range(3):
        assert pipeline.redact("ask EMP-1").text == "ask <EMPLOYEE>"
    assert seen.count("ask EMP-1") == 3  # (it also sees its own output: not a fixpoint)


def test_a_pipeline_with_a_regex_redactor_answers_alike_when_remembering() -> None:
    employees = RegexRedactor(r"EMP-\d+", "<EMPLOYEE>")
    remembering = RedactionPipeline(extra=[employees])
    fresh = RedactionPipeline(extra=[employees], remember=False)
    for _ in range(2):
        result = remembering.redact("EMP-42 wrote from ann.lee@example.com")
        assert (result.text, result.count) == ("<EMPLOYEE> wrote from <EMAIL>", 2)
        assert result == fresh.redact("EMP-42 wrote from ann.lee@example.com")
