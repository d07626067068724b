"""Flows: completing or dropping a user journey is feedback on its calls."""

from __future__ import annotations

import threading

import pytest

from _support.waiting import wait_for
from closedloop.feedback._flows import Flow, FlowTracker, flow

from .helpers import FakeClock, assert_feedback_on, feedback_spans, make_call, parents


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
    checkout = tracker.start("checkout")
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
    refund = tracker.start("refund_request")
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
    done = tracker.start("checkout")
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
    with pytest.raises(KeyError), tracker.start("checkout") as journey:
        journey.add_call(call)
        raise KeyError("cart")
    (span,) = feedback_spans(exporter)
    assert_feedback_on(span, call, "abandoned", 1.0)
    assert span.attributes["closedloop.feedback.label"] == "exception"


def test_reap_abandons_flows_past_their_timeout(provider, exporter, instrumented, clock, tracker):
    start = clock.now
    early, late, finished = (make_call(provider) for _ in range(3))
    first = tracker.start("checkout")
    first.add_call(early)
    clock.advance(30)
    second = tracker.start("checkout")  # same name: a separate flow
    second.add_call(late)
    done = tracker.start("search")
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
    quick = tracker.start("checkout", timeout_s=5)
    slow = tracker.start("checkout")
    clock.advance(5)
    assert tracker.reap() == 1
    assert (quick.state, slow.state) == ("abandoned", "open")


def reapers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "closedloop-flow-reaper"]


def test_reaper_thread_abandons_timed_out_flows(provider, exporter, instrumented):
    before = set(threading.enumerate())
    tracker = FlowTracker()
    try:
        patient = [tracker.start("checkout") for _ in range(20)]
        hurried = tracker.start("checkout", timeout_s=0.02)  # earlier than the rest
        call = make_call(provider)
        hurried.add_call(call)
        started = set(threading.enumerate()) - before
        assert len(started) == 1
        wait_for(lambda: feedback_spans(exporter))
        (span,) = feedback_spans(exporter)
        assert_feedback_on(span, call, "abandoned", 1.0)
        assert hurried.state == "abandoned"
        assert all(p.state == "open" for p in patient)
    finally:
        tracker.close()
    (reaper,) = started
    assert not reaper.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        tracker.start("checkout")


def test_reaper_thread_runs_only_while_flows_are_open():
    """Nothing to stop: an idle tracker holds no thread, so tests and apps need no close()."""
    wait_for(lambda: reapers() == [])  # none left by earlier tests
    tracker = FlowTracker()
    assert reapers() == []
    first, second = tracker.start("checkout"), tracker.start("search")
    (reaper,) = reapers()
    first.complete()
    assert reaper.is_alive() and tracker.open_flows == 1
    second.abandon()
    wait_for(lambda: not reaper.is_alive())
    assert tracker.open_flows == 0
    again = tracker.start("checkout")
    (second_reaper,) = reapers()
    assert second_reaper is not reaper
    again.complete()
    wait_for(lambda: reapers() == [])


def test_reaper_is_not_started_when_told_not_to(clock):
    tracker = FlowTracker(timeout_s=60, clock=clock, start_reaper=False)
    journey = tracker.start("checkout")
    assert reapers() == []
    clock.advance(60)
    assert tracker.reap() == 1
    assert journey.state == "abandoned"


def test_module_level_flow_leaves_no_thread_behind(provider, exporter, instrumented):
    call = make_call(provider)
    with flow("checkout", timeout_s=600) as journey:
        journey.add_call(call)
        assert len(reapers()) == 1
    (span,) = feedback_spans(exporter)
    assert span.parent is not None
    assert span.parent.span_id == call.span_id
    assert span.attributes["closedloop.feedback.name"] == "time_to_completion_s"
    assert span.attributes["closedloop.feedback.value"] >= 0
    wait_for(lambda: reapers() == [])


@pytest.mark.parametrize(
    ("make", "error", "field"),
    [
        (lambda: FlowTracker(timeout_s=0, start_reaper=False), ValueError, "timeout_s"),
        (lambda: FlowTracker(timeout_s="60", start_reaper=False), TypeError, "timeout_s"),
        (lambda: FlowTracker(clock=1.0, start_reaper=False), TypeError, "clock"),
        (lambda: FlowTracker(start_reaper=False).start(""), ValueError, "name"),
        (lambda: FlowTracker(start_reaper=False).start(7), TypeError, "name"),
        (
            lambda: FlowTracker(start_reaper=False).start("checkout", timeout_s=-1),
            ValueError,
            "timeout_s",
        ),
        # Longer than a thread can wait: the reaper would die of an OverflowError.
        (lambda: FlowTracker(timeout_s=1e20, start_reaper=False), ValueError, "timeout_s"),
        (
            lambda: FlowTracker(start_reaper=False).start("checkout", timeout_s=10**400),
            ValueError,
            "timeout_s",
        ),
        (lambda: Flow("checkout").add_call("nope"), ValueError, "trace id"),
        (lambda: Flow("checkout").add_call(12345), TypeError, "target"),
        (lambda: Flow("checkout").abandon(reason=""), ValueError, "reason"),
        (lambda: Flow("checkout").abandon(reason=3), TypeError, "reason"),
    ],
)
def test_flows_reject_bad_input(make, error, field):
    with pytest.raises(error, match=field):
        make()


def test_flows_take_no_user_id():
    """A flow's feedback lands on its calls, which carry their user's hash already."""
    with pytest.raises(TypeError):
        FlowTracker(start_reaper=False).start("checkout", "alice")
    with pytest.raises(TypeError):
        flow("checkout", "alice")
