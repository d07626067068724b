"""Implicit feedback: edit ratio and retry detection, as real exported OTel spans."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading

import pytest
from opentelemetry.trace import SpanContext, format_span_id, format_trace_id

from closedloop.feedback._implicit import RetryDetector, edit_ratio, record_edit

from .helpers import FakeClock, assert_feedback_on, feedback_spans, make_call, parents

PASSWORD = "How do I reset my password?"
FULLWIDTH_PASSWORD = "".join(" " if ch == " " else chr(ord(ch) + 0xFEE0) for ch in PASSWORD)


# edit_ratio


def test_edit_ratio_bounds_and_extremes():
    assert edit_ratio("The answer is 42.", "The answer is 42.") == 0.0
    assert edit_ratio("", "") == 0.0
    assert edit_ratio("", "something new") == 1.0
    assert edit_ratio("abcdefgh", "stuvwxyz") == 1.0
    assert edit_ratio("def add(a, b): return a + b", "SELECT * FROM users;") > 0.9


def test_edit_ratio_reads_as_share_of_text_changed():
    original = "x" * 100
    assert edit_ratio(original, original[:20]) == pytest.approx(0.8)
    assert edit_ratio(original, "y" * 80 + original[80:]) == pytest.approx(0.8)


def test_edit_ratio_small_edit_is_small_and_grows_with_edits():
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "near"]
    original = " ".join(words)
    assert 0 < edit_ratio(original, original.replace("lazy", "lacy")) < 0.05
    ratios = [
        edit_ratio(original, " ".join(["XXXXX"] * changed + words[changed:]))
        for changed in range(len(words) + 1)
    ]
    assert ratios[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(ratios)), ratios
    assert ratios[-1] > 0.8  # only the spaces between words survive


@pytest.mark.parametrize(
    ("original", "edited", "field"), [(None, "a", "original"), ("a", 3, "edited")]
)
def test_edit_ratio_rejects_non_text(original, edited, field):
    with pytest.raises(TypeError, match=field):
        edit_ratio(original, edited)


def test_record_edit_records_implicit_edit_ratio(provider, exporter, instrumented):
    call = make_call(provider)
    original, edited = "Refunds take 5 days.", "Refunds take 5 to 7 business days."
    recorded = record_edit(call, original, edited, source="editor")
    (span,) = feedback_spans(exporter)
    assert recorded.span_id == format_span_id(span.context.span_id)
    assert_feedback_on(span, call, "edit_ratio", edit_ratio(original, edited))
    assert 0 < span.attributes["closedloop.feedback.value"] < 1
    assert span.attributes["closedloop.feedback.source"] == "editor"
    with pytest.raises(TypeError, match="kind"):
        record_edit(call, original, edited, kind="explicit")  # always implicit


# RetryDetector


@pytest.mark.parametrize(
    "again",
    [
        "how do i reset my pasword",
        "My password - how do I reset it?",
        "HOW DO I RESET MY PASSWORD!!!",
        FULLWIDTH_PASSWORD,
    ],
)
def test_retry_recorded_on_the_earlier_call(provider, exporter, instrumented, again):
    detector = RetryDetector()
    first, second = make_call(provider), make_call(provider)
    assert detector.observe("alice", PASSWORD, first) is None
    recorded = detector.observe("alice", again, second)
    (span,) = feedback_spans(exporter)
    assert recorded is not None
    assert recorded.trace_id == format_trace_id(first.trace_id)
    assert_feedback_on(span, first, "retry", 1.0)
    assert span.attributes["closedloop.feedback.source"] == "retry_detector"


def test_retry_accepts_trace_and_span_id_text(provider, exporter, instrumented):
    detector = RetryDetector()
    first = make_call(provider)
    text_target = f"{format_trace_id(first.trace_id)}:{format_span_id(first.span_id)}"
    detector.observe("alice", PASSWORD, text_target)
    assert detector.observe("alice", PASSWORD, make_call(provider)) is not None
    assert parents(feedback_spans(exporter)) == [first.span_id]


@pytest.mark.parametrize(
    ("user", "again"),
    [
        ("alice", "What are your opening hours?"),
        ("alice", "How do I delete my account?"),
        ("bob", PASSWORD),
    ],
)
def test_no_retry_for_other_question_or_other_user(provider, exporter, instrumented, user, again):
    detector = RetryDetector()
    detector.observe("alice", PASSWORD, make_call(provider))
    assert detector.observe(user, again, make_call(provider)) is None
    assert feedback_spans(exporter) == []


def test_no_retry_outside_the_window(provider, exporter, instrumented):
    clock = FakeClock()
    detector = RetryDetector(window_s=60, clock=clock)
    detector.observe("alice", PASSWORD, make_call(provider))
    clock.advance(60.5)
    assert detector.observe("alice", PASSWORD, make_call(provider)) is None
    clock.advance(59.5)
    assert detector.observe("alice", PASSWORD, make_call(provider)) is not None
    assert len(feedback_spans(exporter)) == 1


def test_each_earlier_question_blamed_at_most_once(provider, exporter, instrumented):
    detector = RetryDetector()
    calls = [make_call(provider) for _ in range(4)]
    results = [detector.observe("alice", PASSWORD, call) for call in calls]
    assert results[0] is None
    assert all(r is not None for r in results[1:])
    assert parents(feedback_spans(exporter)) == [c.span_id for c in calls[:3]]


# Both restatements repeat RESET, but not each other (similarity is not transitive).
RESET = "please reset my account password"
RESET_ASAP = "please reset my account password asap"
RESET_PLZ = "plz reset my account password"


def test_latest_unclaimed_repeat_is_blamed(provider, exporter, instrumented):
    detector = RetryDetector()
    asap, plz = make_call(provider), make_call(provider)
    assert detector.observe("alice", RESET_ASAP, asap) is None
    assert detector.observe("alice", RESET_PLZ, plz) is None
    assert detector.observe("alice", RESET, make_call(provider)) is not None
    assert parents(feedback_spans(exporter)) == [plz.span_id]


def test_claimed_question_is_not_blamed_again(provider, exporter, instrumented):
    detector = RetryDetector()
    first = make_call(provider)
    detector.observe("alice", RESET, first)
    assert detector.observe("alice", RESET_ASAP, make_call(provider)) is not None
    assert detector.observe("alice", RESET_PLZ, make_call(provider)) is None
    assert parents(feedback_spans(exporter)) == [first.span_id]


def test_punctuation_only_question_is_ignored(provider, exporter, instrumented):
    detector = RetryDetector()
    detector.observe("alice", "???", make_call(provider))
    assert detector.observe("alice", "?!", make_call(provider)) is None
    assert feedback_spans(exporter) == []


def test_least_recently_active_user_is_forgotten(provider, exporter, instrumented):
    detector = RetryDetector(max_users=2)
    alice_first = make_call(provider)
    detector.observe("alice", PASSWORD, alice_first)
    detector.observe("bob", PASSWORD, make_call(provider))
    detector.observe("alice", "Where is my order?", make_call(provider))
    detector.observe("carol", PASSWORD, make_call(provider))  # evicts bob, not alice
    assert detector.observe("alice", PASSWORD, make_call(provider)) is not None
    assert detector.observe("bob", PASSWORD, make_call(provider)) is None
    assert parents(feedback_spans(exporter)) == [alice_first.span_id]


def test_only_recent_questions_per_user_are_kept(provider, exporter, instrumented):
    detector = RetryDetector(max_questions_per_user=2)
    detector.observe("alice", PASSWORD, make_call(provider))
    detector.observe("alice", "Where is my order?", make_call(provider))
    detector.observe("alice", "What are your opening hours?", make_call(provider))
    assert detector.observe("alice", PASSWORD, make_call(provider)) is None
    assert feedback_spans(exporter) == []


def test_retry_detection_from_many_threads(provider, exporter, instrumented):
    detector = RetryDetector()
    threads, users_per_thread = 8, 50
    users = [[f"user-{t}-{u}" for u in range(users_per_thread)] for t in range(threads)]
    firsts = {user: make_call(provider) for group in users for user in group}
    seconds = {user: make_call(provider) for group in users for user in group}
    results: dict[str, list[object]] = {user: [] for user in firsts}
    barrier = threading.Barrier(threads)

    def run(group: list[str]) -> None:
        barrier.wait()
        for asks in (firsts, seconds):
            for user in group:  # every user asks the very same question
                results[user].append(detector.observe(user, PASSWORD, asks[user]))

    workers = [threading.Thread(target=run, args=(group,)) for group in users]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(first is None and second is not None for first, second in results.values())
    assert sorted(parents(feedback_spans(exporter))) == sorted(c.span_id for c in firsts.values())


def test_one_user_from_many_threads_blames_each_call_once(provider, exporter, instrumented):
    detector = RetryDetector()
    calls = [[make_call(provider) for _ in range(50)] for _ in range(8)]
    results: list[list[object]] = [[] for _ in calls]
    barrier = threading.Barrier(len(calls))

    def run(mine: list[SpanContext], out: list[object]) -> None:
        barrier.wait()
        out.extend(detector.observe("alice", PASSWORD, call) for call in mine)

    workers = [threading.Thread(target=run, args=pair) for pair in zip(calls, results, strict=True)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a race would show
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switch_interval)
    blamed = parents(feedback_spans(exporter))
    assert sum(r is None for out in results for r in out) == 1
    assert len(blamed) == len(set(blamed)) == 8 * 50 - 1


def test_retry_detection_from_asyncio(provider, exporter, instrumented):
    detector = RetryDetector()
    users = [f"user-{n}" for n in range(200)]
    firsts = {user: make_call(provider) for user in users}

    async def conversation(user: str) -> tuple[object, object]:
        first = detector.observe(user, f"Where is order {user}?", firsts[user])
        await asyncio.sleep(0)
        again = detector.observe(user, f"where is order {user}", make_call(provider))
        return first, again

    async def main() -> list[tuple[object, object]]:
        return await asyncio.gather(*(conversation(user) for user in users))

    outcomes = asyncio.run(main())
    assert all(first is None and again is not None for first, again in outcomes)
    assert sorted(parents(feedback_spans(exporter))) == sorted(c.span_id for c in firsts.values())


@pytest.mark.parametrize(
    ("options", "error", "field"),
    [
        ({"window_s": 0}, ValueError, "window_s"),
        ({"window_s": float("nan")}, ValueError, "window_s"),
        ({"threshold": 0}, ValueError, "threshold"),
        ({"threshold": 101}, ValueError, "threshold"),
        ({"threshold": "90"}, TypeError, "threshold"),
        ({"max_users": 0}, ValueError, "max_users"),
        ({"max_questions_per_user": 1.5}, TypeError, "max_questions_per_user"),
        ({"clock": 5}, TypeError, "clock"),
    ],
)
def test_retry_detector_rejects_bad_settings(options, error, field):
    with pytest.raises(error, match=field):
        RetryDetector(**options)


def test_observe_rejects_bad_input(provider, instrumented):
    detector = RetryDetector()
    with pytest.raises(ValueError, match="user_id"):
        detector.observe("", PASSWORD, make_call(provider))
    with pytest.raises(TypeError, match="user_id"):
        detector.observe(7, PASSWORD, make_call(provider))
    with pytest.raises(TypeError, match="question"):
        detector.observe("alice", None, make_call(provider))
    with pytest.raises(ValueError, match="trace id"):
        detector.observe("alice", PASSWORD, "not-a-trace-id")
