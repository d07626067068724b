"""Implicit feedback: edit ratio, retry detection and flows, as real exported OTel spans."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, format_span_id, format_trace_id

from closedloop.feedback.flows import Flow, FlowTracker, flow
from closedloop.feedback.implicit import RetryDetector, edit_ratio, record_edit

PASSWORD = "How do I reset my password?"
FULLWIDTH_PASSWORD = "".join(" " if ch == " " else chr(ord(ch) + 0xFEE0) for ch in PASSWORD)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_call(provider: TracerProvider) -> SpanContext:
    """A finished LLM-call span to attach feedback to."""
    span = provider.get_tracer("test").start_span("chat test-model")
    span.end()
    return span.get_span_context()


def feedback_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "closedloop.feedback"]


def assert_feedback_on(span: ReadableSpan, call: SpanContext, name: str, value: float) -> None:
    assert span.context.trace_id == call.trace_id
    assert span.parent is not None
    assert span.parent.span_id == call.span_id
    assert span.attributes["closedloop.feedback.kind"] == "implicit"
    assert span.attributes["closedloop.feedback.name"] == name
    assert span.attributes["closedloop.feedback.value"] == pytest.approx(value)
    (event,) = span.events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes["gen_ai.evaluation.name"] == name
    assert event.attributes["gen_ai.evaluation.score.value"] == pytest.approx(value)


def parents(spans: list[ReadableSpan]) -> list[int]:
    return [s.parent.span_id for s in spans if s.parent is not None]


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
    with pytest.raises(ValueError, match=field):
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
    with pytest.raises(ValueError, match="kind"):
        record_edit(call, original, edited, kind="explicit")


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
    ("options", "field"),
    [
        ({"window_s": 0}, "window_s"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 101}, "threshold"),
        ({"max_users": 0}, "max_users"),
        ({"max_questions_per_user": 1.5}, "max_questions_per_user"),
    ],
)
def test_retry_detector_rejects_bad_settings(options, field):
    with pytest.raises(ValueError, match=field):
        RetryDetector(**options)


def test_observe_rejects_bad_input(provider, instrumented):
    detector = RetryDetector()
    with pytest.raises(ValueError, match="user_id"):
        detector.observe("", PASSWORD, make_call(provider))
    with pytest.raises(ValueError, match="question"):
        detector.observe("alice", None, make_call(provider))
    with pytest.raises(ValueError, match="trace id"):
        detector.observe("alice", PASSWORD, "not-a-trace-id")


# Flows


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock):
    driven = FlowTracker(timeout_s=60, clock=clock, start_reaper=False)
    yield driven
    driven.close()


def test_complete_records_time_to_completion_on_every_call(
    provider, exporter, instrumented, clock, tracker
):
    checkout = tracker.start("checkout", "alice")
    calls = [make_call(provider) for _ in range(3)]
    for call in [*calls, calls[0]]:
        checkout.add_call(call)
    clock.advance(12.5)
    recorded = checkout.complete()
    spans = feedback_spans(exporter)
    assert len(recorded) == len(spans) == 3
    for span, call in zip(spans, calls, strict=True):
        assert_feedback_on(span, call, "time_to_completion_s", 12.5)
        assert span.attributes["closedloop.feedback.source"] == "flow:checkout"
    assert checkout.state == "completed"


def test_abandon_records_abandoned_on_every_call(provider, exporter, instrumented, tracker):
    refund = tracker.start("refund_request", "alice")
    calls = [make_call(provider) for _ in range(2)]
    for call in calls:
        refund.add_call(call)
    assert len(refund.abandon()) == 2
    spans = feedback_spans(exporter)
    for span, call in zip(spans, calls, strict=True):
        assert_feedback_on(span, call, "abandoned", 1.0)
        assert span.attributes["closedloop.feedback.source"] == "flow:refund_request"
    assert refund.state == "abandoned"


def test_flow_ends_once(provider, exporter, instrumented, clock, tracker):
    done = tracker.start("checkout", "alice")
    done.add_call(make_call(provider))
    assert len(done.complete()) == 1
    assert done.complete() == []
    assert done.abandon() == []
    done.add_call(make_call(provider))
    clock.advance(3600)
    assert tracker.reap() == 0
    assert [s.attributes["closedloop.feedback.name"] for s in feedback_spans(exporter)] == [
        "time_to_completion_s"
    ]


def test_context_manager_completes_on_normal_exit(provider, exporter, instrumented, clock):
    call = make_call(provider)
    with Flow("checkout", clock=clock) as journey:
        journey.add_call(call)
        clock.advance(4)
    (span,) = feedback_spans(exporter)
    assert_feedback_on(span, call, "time_to_completion_s", 4.0)


def test_context_manager_abandons_on_exception(provider, exporter, instrumented, tracker):
    call = make_call(provider)
    with pytest.raises(KeyError), tracker.start("checkout", "alice") as journey:
        journey.add_call(call)
        raise KeyError("cart")
    (span,) = feedback_spans(exporter)
    assert_feedback_on(span, call, "abandoned", 1.0)
    assert span.attributes["closedloop.feedback.label"] == "exception"


def test_reap_abandons_flows_past_their_timeout(provider, exporter, instrumented, clock, tracker):
    start = clock.now
    early, late, finished = (make_call(provider) for _ in range(3))
    first = tracker.start("checkout", "alice")
    first.add_call(early)
    clock.advance(30)
    second = tracker.start("checkout", "alice")  # same name and user: a separate flow
    second.add_call(late)
    done = tracker.start("search", "bob")
    done.add_call(finished)
    done.complete()
    assert tracker.reap(now=start + 59.9) == 0
    assert tracker.reap(now=start + 60) == 1
    assert (first.state, second.state) == ("abandoned", "open")
    assert tracker.reap(now=start + 90) == 1
    abandoned = [
        s
        for s in feedback_spans(exporter)
        if s.attributes["closedloop.feedback.name"] == "abandoned"
    ]
    assert parents(abandoned) == [early.span_id, late.span_id]
    assert all(s.attributes["closedloop.feedback.label"] == "timeout" for s in abandoned)
    assert done.state == "completed"


def test_per_flow_timeout_overrides_the_tracker(clock, tracker):
    quick = tracker.start("checkout", "alice", timeout_s=5)
    slow = tracker.start("checkout", "alice")
    clock.advance(5)
    assert tracker.reap() == 1
    assert (quick.state, slow.state) == ("abandoned", "open")


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_reaper_thread_abandons_timed_out_flows(provider, exporter, instrumented):
    before = set(threading.enumerate())
    tracker = FlowTracker()
    try:
        patient = [tracker.start("checkout", f"user-{n}") for n in range(20)]
        hurried = tracker.start("checkout", "alice", timeout_s=0.02)  # earlier than the rest
        call = make_call(provider)
        hurried.add_call(call)
        started = set(threading.enumerate()) - before
        assert len(started) == 1
        assert wait_for(lambda: feedback_spans(exporter))
        (span,) = feedback_spans(exporter)
        assert_feedback_on(span, call, "abandoned", 1.0)
        assert hurried.state == "abandoned"
        assert all(p.state == "open" for p in patient)
    finally:
        tracker.close()
    (reaper,) = started
    assert not reaper.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        tracker.start("checkout", "alice")


def test_module_level_flow(provider, exporter, instrumented):
    call = make_call(provider)
    with flow("checkout", "alice", timeout_s=600) as journey:
        journey.add_call(call)
    (span,) = feedback_spans(exporter)
    assert span.parent is not None
    assert span.parent.span_id == call.span_id
    assert span.attributes["closedloop.feedback.name"] == "time_to_completion_s"
    assert span.attributes["closedloop.feedback.value"] >= 0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: FlowTracker(timeout_s=0, start_reaper=False), "timeout_s"),
        (lambda: FlowTracker(start_reaper=False).start("", "alice"), "name"),
        (lambda: FlowTracker(start_reaper=False).start("checkout", ""), "user_id"),
        (lambda: FlowTracker(start_reaper=False).start("checkout", "a", timeout_s=-1), "timeout_s"),
        (lambda: Flow("checkout").add_call("nope"), "trace id"),
        (lambda: Flow("checkout").abandon(reason=""), "reason"),
    ],
)
def test_flows_reject_bad_input(make, field):
    with pytest.raises(ValueError, match=field):
        make()
