"""Shadow runs off the user's path: real openai calls against the local server, the real
OTel SDK, closedloop's real instrumentation. Ordering is shown with events; a timeout
only keeps a broken run from hanging, it is never what a test measures."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

import closedloop
from _support.spans import async_client_for, client_for, llm_spans
from _support.waiting import wait_for
from closedloop._health import stats as health_stats
from closedloop.experiments._shadow import (
    CLOSE_TIMEOUT_S,
    ShadowRunner,
    ShadowStats,
    ShadowVersion,
)
from closedloop.testing import OpenAICompatibleServer

GUARD_S = 10.0  # only keeps a broken run from hanging
MODEL = "gpt-4o-mini"
SHADOW = ShadowVersion(
    "triage", "v4", [{"role": "user", "content": "hello shadow"}], MODEL, {"temperature": 0.5}
)


def shadow_call(client: openai.OpenAI) -> Callable[..., Any]:
    def call(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **parameters)

    return call


def ask(client: openai.OpenAI, text: str = "hello there", **options: Any) -> Any:
    return client.chat.completions.create(
        model=options.pop("model", MODEL), messages=[{"role": "user", "content": text}], **options
    )


class Gate:
    """A shadow callable held until released: ``started`` and ``done`` tell the test where
    it is, so the test orders events without reading a clock."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client
        self.started = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()

    def __call__(self, messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        self.started.set()
        self.release.wait(GUARD_S)
        try:
            return shadow_call(self.client)(messages, model, parameters)
        finally:
            self.done.set()


def user_request(client: openai.OpenAI, runner: ShadowRunner | None, call: Any, **options: Any):
    """The app's request handler: the production call, a shadow submitted right after it
    (before a stream is read), and what the user gets: the reply, the chunks, or the error."""
    with closedloop.context(user_id="u1", prompt_name="triage", prompt_version="v3"):
        try:
            reply = ask(client, **options)
        except openai.APIError as error:
            if runner is not None:
                runner.submit(SHADOW, call)
            return ("raised", type(error).__name__, str(error), error.body)
        if runner is not None:
            runner.submit(SHADOW, call)
        if options.get("stream"):
            return [chunk.model_dump() for chunk in reply]
        return reply.model_dump()


@pytest.mark.parametrize(
    "options",
    [{}, {"stream": True}, {"model": "error-500"}],
    ids=["reply", "stream", "error"],
)
def test_a_slow_shadow_never_blocks_or_changes_the_users_call(
    instrumented, make_server: Callable[..., OpenAICompatibleServer], options
):
    without = user_request(client_for(make_server()), None, None, **options)
    gate = Gate(client_for(make_server()))
    with ShadowRunner() as runner:
        with_shadow = user_request(client_for(make_server()), runner, gate, **options)
        # the user has the answer while the shadow is still held
        assert not gate.done.is_set()
        assert gate.started.wait(GUARD_S)
        gate.release.set()
    assert with_shadow == without
    assert gate.done.is_set()
    assert runner.stats() == ShadowStats(
        submitted=1, completed=1, spent_usd_this_hour=runner.stats().spent_usd_this_hour
    )


def test_a_failing_shadow_never_surfaces_and_is_counted_and_logged_once(
    instrumented, server: OpenAICompatibleServer, caplog: pytest.LogCaptureFixture
):
    client = client_for(server)

    def broken(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        raise ValueError("a bug in the app's shadow callable")

    failing_model = ShadowVersion("triage", "v4", SHADOW.messages, "error-500")
    with caplog.at_level(logging.WARNING), ShadowRunner(workers=1) as runner:
        with closedloop.context(prompt_name="triage", prompt_version="v3"):
            reply = ask(client)
            assert runner.submit(failing_model, shadow_call(client))
            assert runner.submit(SHADOW, broken)
        assert reply.choices[0].message.content == "Echo: hello there"
    stats = runner.stats()
    assert (stats.failed, stats.completed, stats.submitted) == (2, 0, 2)
    assert health_stats()["failures_by_site"] == {"experiments.shadow": 2}
    logged = [r for r in caplog.records if "experiments.shadow" in r.getMessage()]
    assert len(logged) == 1
    assert [r.json["model"] for r in server.requests] == [MODEL, "error-500"]


def test_a_full_queue_drops_shadows_and_counts_them(instrumented, server):
    gate = Gate(client_for(server))
    with ShadowRunner(workers=1, queue_size=1) as runner:
        assert runner.submit(SHADOW, gate)
        assert gate.started.wait(GUARD_S)  # the only worker is busy
        assert runner.submit(SHADOW, gate)  # waits in the queue
        assert not runner.submit(SHADOW, gate)  # the queue is full: dropped at once
        assert not runner.submit(SHADOW, gate)
        assert runner.stats().dropped_queue_full == 2
        gate.release.set()
    stats = runner.stats()
    assert (stats.submitted, stats.completed, stats.dropped_queue_full) == (4, 2, 2)
    assert len(server.requests) == 2


def test_the_cost_cap_stops_shadows_until_the_next_hour(
    instrumented, make_server, exporter: InMemorySpanExporter
):
    """The cap is checked as each shadow starts: those queued behind the call that reached
    it never reach the server, and neither do those submitted later in the hour."""
    shadow_server = make_server()
    gate = Gate(client_for(shadow_server))
    now = [7 * 3600.0 + 10]
    with ShadowRunner(workers=1, max_cost_per_hour_usd=1e-9, clock=lambda: now[0]) as runner:
        assert runner.submit(SHADOW, gate)
        assert gate.started.wait(GUARD_S)
        assert runner.submit(SHADOW, gate)  # queued before the cap is reached
        assert runner.submit(SHADOW, gate)
        gate.release.set()
        wait_for(lambda: runner.stats().dropped_cost_cap == 2, GUARD_S)
        assert len(shadow_server.requests) == 1
        now[0] += 3599 - 10  # the same clock hour
        assert not runner.submit(SHADOW, gate)
        assert runner.stats().dropped_cost_cap == 3
        now[0] += 1  # the next hour: shadows resume
        assert runner.submit(SHADOW, gate)
    assert len(shadow_server.requests) == 2
    stats = runner.stats()
    assert (stats.submitted, stats.completed, stats.dropped_cost_cap) == (5, 2, 3)
    costs = [span.attributes["closedloop.cost.usd"] for span in llm_spans(exporter)]
    assert len(costs) == 2 and costs[0] > 0
    assert stats.spent_usd_this_hour == costs[1]  # the new hour counts its own call only


def test_asyncio_submit_from_a_coroutine_never_blocks_the_event_loop(
    instrumented, make_server, exporter: InMemorySpanExporter
):
    """An async shadow call runs on the runner's one loop: held there, it holds neither the
    app's loop nor the app's next call."""
    production_server, shadow_server = make_server(), make_server()
    started = threading.Event()
    released = threading.Event()
    finished = threading.Event()
    shadow_loops: list[asyncio.AbstractEventLoop] = []

    async def held_shadow(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        shadow_loops.append(asyncio.get_running_loop())
        started.set()
        released.wait(GUARD_S)  # blocks whichever loop runs it
        try:
            async with async_client_for(shadow_server) as shadow_client:
                return await shadow_client.chat.completions.create(
                    model=model, messages=messages, **parameters
                )
        finally:
            finished.set()

    async def app() -> tuple[list[str], asyncio.AbstractEventLoop]:
        answers = []
        async with async_client_for(production_server) as client, ShadowRunner() as runner:
            with closedloop.context(prompt_name="triage", prompt_version="v3"):
                reply = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "first"}]
                )
                assert runner.submit(SHADOW, held_shadow)
                assert runner.submit(SHADOW, held_shadow)
            answers.append(reply.choices[0].message.content)
            # the shadow has started, on some loop; waited for off this loop
            assert await asyncio.to_thread(started.wait, GUARD_S)
            reply = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "second"}]
            )
            answers.append(reply.choices[0].message.content)
            assert not finished.is_set()  # the app went on while the shadow was held
            released.set()
        assert runner.stats().completed == 2
        return answers, asyncio.get_running_loop()

    answers, app_loop = asyncio.run(app())
    assert answers == ["Echo: first", "Echo: second"]
    assert shadow_loops[0] is shadow_loops[1] is not app_loop
    [first] = [s for s in llm_spans(exporter) if "first" in s.attributes["gen_ai.input.messages"]]
    shadows = [s for s in llm_spans(exporter) if s.attributes.get("closedloop.shadow")]
    assert [[link.context for link in s.links] for s in shadows] == [[first.context]] * 2
    assert [r.json["messages"][0]["content"] for r in shadow_server.requests] == [
        "hello shadow"
    ] * 2


def production_span(trace_id: int) -> SpanContext:
    return SpanContext(trace_id, 0x1234, is_remote=False, trace_flags=TraceFlags(1))


def test_sampling_is_decided_by_the_production_trace_id():
    """A share of production calls, the same answer for every shadow of one trace: the
    low 64 bits of the trace id under rate x 2^64, as OpenTelemetry's ratio sampler."""
    ran: list[int] = []
    with ShadowRunner(sample_rate=0.25) as runner:
        for trace_id in (1, (1 << 62) - 1, 1 << 62, (1 << 64) - 1, (7 << 64) + 5):
            for _ in range(2):
                runner.submit(
                    SHADOW,
                    lambda m, model, p, t=trace_id: ran.append(t),
                    production=production_span(trace_id),
                )
    assert sorted(ran) == [1, 1, (1 << 62) - 1, (1 << 62) - 1, (7 << 64) + 5, (7 << 64) + 5]
    stats = runner.stats()
    assert (stats.submitted, stats.sampled_out, stats.completed) == (6, 4, 6)


def test_close_drops_or_drains_with_counts_and_nothing_runs_after_it(instrumented, server):
    gate = Gate(client_for(server))
    ran: list[str] = []
    runner = ShadowRunner(workers=1)
    assert runner.submit(SHADOW, gate)
    assert gate.started.wait(GUARD_S)
    for name in ("queued-1", "queued-2"):
        assert runner.submit(SHADOW, lambda m, model, p, name=name: ran.append(name))
    closing = threading.Thread(target=runner.close, kwargs={"drain": False})
    closing.start()
    wait_for(lambda: runner.stats().dropped_closed == 2, GUARD_S)
    assert closing.is_alive()  # close waits for the call in flight
    gate.release.set()
    closing.join(GUARD_S)
    assert not closing.is_alive() and gate.done.is_set()
    assert not runner.submit(SHADOW, lambda m, model, p: ran.append("late"))
    assert ran == []
    stats = runner.stats()
    assert (stats.submitted, stats.completed, stats.dropped_closed) == (4, 1, 3)

    drained = ShadowRunner(workers=1)
    for name in ("a", "b", "c"):
        drained.submit(SHADOW, lambda m, model, p, name=name: ran.append(name))
    assert drained.close().completed == 3
    assert ran == ["a", "b", "c"]


def fine(messages: list[Any], model: str, parameters: dict[str, Any]) -> str:
    return "fine"


def test_a_shadow_raising_a_base_exception_is_counted_and_the_worker_lives_on():
    def cancelled(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        raise asyncio.CancelledError  # what anyio and asyncio code raise on cancellation

    with ShadowRunner(workers=1) as runner:
        assert runner.submit(SHADOW, cancelled)
        assert runner.submit(SHADOW, cancelled)
        assert runner.submit(SHADOW, fine)
        wait_for(lambda: runner.stats().completed == 1, GUARD_S)
        assert all(worker.is_alive() for worker in runner._workers)
    stats = runner.stats()
    assert (stats.submitted, stats.failed, stats.completed) == (3, 2, 1)


def test_an_async_shadow_past_its_timeout_is_cancelled_and_the_pool_serves_on():
    cancelled = threading.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with ShadowRunner(workers=1, timeout_s=0.2) as runner:
        assert runner.submit(SHADOW, lambda messages, model, parameters: never())
        assert runner.submit(SHADOW, fine)
        wait_for(lambda: runner.stats().completed == 1, GUARD_S)
    assert cancelled.is_set()
    stats = runner.stats()
    assert (stats.timed_out, stats.completed, stats.failed, stats.stuck) == (1, 1, 0, 0)


def test_a_sync_shadow_past_its_timeout_holds_one_worker_counted_as_stuck():
    release = threading.Event()

    def blocked(messages: list[Any], model: str, parameters: dict[str, Any]) -> str:
        release.wait(GUARD_S)
        return "late"

    runner = ShadowRunner(workers=2, timeout_s=0.2)
    assert runner.submit(SHADOW, blocked)
    wait_for(lambda: runner.stats().stuck == 1, GUARD_S)
    for _ in range(3):
        assert runner.submit(SHADOW, fine)  # the other worker serves meanwhile
    wait_for(lambda: runner.stats().completed == 3, GUARD_S)
    release.set()
    stats = runner.close(timeout=GUARD_S)
    assert (stats.timed_out, stats.completed, stats.stuck) == (1, 3, 0)


def test_leaving_a_with_block_never_hangs_on_a_shadow_that_never_ends():
    release = threading.Event()
    left = threading.Event()

    def blocked(messages: list[Any], model: str, parameters: dict[str, Any]) -> None:
        release.wait(60)

    def app() -> None:
        with ShadowRunner(timeout_s=3600) as runner:
            runner.submit(SHADOW, blocked)
        left.set()

    threading.Thread(target=app, daemon=True).start()
    try:
        assert left.wait(CLOSE_TIMEOUT_S + GUARD_S)  # the default close timeout, not for ever
    finally:
        release.set()


def test_submit_with_a_production_that_is_no_span_context_falls_back_to_the_current_span():
    with ShadowRunner(sample_rate=0.5) as runner:
        for _ in range(20):
            runner.submit(SHADOW, fine, production=object())  # type: ignore[arg-type]
    stats = runner.stats()
    assert stats.submitted + stats.sampled_out == 20
    assert stats.completed == stats.submitted
