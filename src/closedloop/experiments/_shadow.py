"""Shadow runs: a shadow prompt version answers the production call's input off the user's path.

The reference article awaits the shadow call inside the user's request, so every user waits
for a version nobody sees. Here the user's call pays one queue put: ``submit`` captures the
production call's span context and the request's context variables (both O(1)), and a
bounded pool of daemon threads does the rest. An async shadow call (a coroutine from an
``AsyncOpenAI`` client) runs on one background event loop, never the app's, so ``submit``
is the same non-blocking, thread-safe call from a thread or a coroutine.

Limits, so a shadow can never hurt production: a full queue drops the work (counted), an
hourly USD cap (the calls' cost as the instrumentation prices it, in fixed clock-hour
windows) stops shadows until the next hour (counted), a shadow that runs past its
``timeout_s`` is given up (counted), and a failing shadow is caught, whatever it raises
(``asyncio.CancelledError`` too), counted and logged once through closedloop's health
counters.

Each shadow LLM span carries ``closedloop.shadow = true``, the production call's prompt
name with the shadow version as ``gen_ai.prompt.version``, ``closedloop.variant = shadow``
(the version's status, as on the production spans), and a span link to the production
call's span. It is also that span's child, in the production trace: tail sampling and
the rescue then keep or drop both outputs together (two traces would be kept together
only by chance), and a head sampler decides for both alike. The store's views leave
shadow calls out of production metrics; ``shadow_pairs`` pairs the two.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext

from closedloop import _health as health
from closedloop._validation import finite_number, require_callable, require_positive_int
from closedloop.experiments._shadow_budget import HourlyBudget
from closedloop.experiments._shadow_loop import BackgroundLoop, LoopTimeout
from closedloop.instrumentation._context import context, latest_generation
from closedloop.instrumentation._observer import CallObserver, observed

if TYPE_CHECKING:
    from closedloop.experiments._selection import Selection

__all__ = ["ShadowCall", "ShadowRunner", "ShadowStats", "ShadowVersion"]

ShadowCall = Callable[[list[Mapping[str, Any]], str, dict[str, Any]], object]
"""Makes the shadow's LLM call: ``call(messages, model, parameters)``. It returns the
complete response (a stream must be consumed inside), or an awaitable of it, which is
awaited on the runner's background loop: give async shadows a client of their own."""

_TRACE_ID_SPACE = 1 << 64


@dataclass(frozen=True)
class ShadowVersion:
    """What a shadow version would have been sent for one production call: the same input
    rendered with the shadow version's template, model and parameters."""

    prompt_name: str
    version: str
    messages: Sequence[Mapping[str, Any]]
    model: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    experiment: str | None = None

    @classmethod
    def of(cls, selection: Selection) -> ShadowVersion:
        """A registry selection's shadow version (one of ``choice.shadows``)."""
        return cls(
            selection.prompt,
            selection.version,
            selection.messages,
            selection.model,
            dict(selection.parameters),
            selection.experiment,
        )


@dataclass(frozen=True)
class ShadowStats:
    """The runner's counts. Every submitted shadow ends as exactly one of completed, failed,
    timed_out or dropped_* (one still running has not ended yet); ``unpriced`` completed
    calls cost nothing to the cap (no known price, or no instrumentation to price them).
    ``stuck`` is not a count but the workers now held by a sync shadow past its timeout."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    dropped_queue_full: int = 0
    dropped_cost_cap: int = 0
    dropped_closed: int = 0
    sampled_out: int = 0
    unpriced: int = 0
    stuck: int = 0
    spent_usd_this_hour: float = 0.0


_COUNTS = tuple(
    f.name for f in fields(ShadowStats) if f.name not in ("stuck", "spent_usd_this_hour")
)
"""The fields of :class:`ShadowStats` that count events: the runner keeps them in a dict."""
CLOSE_TIMEOUT_S = 10.0
"""How long ``close`` (and leaving a ``with`` block) waits by default for running shadows."""


class _Job(NamedTuple):
    """One submitted shadow (a tuple: made on the user's path, at half a frozen
    dataclass's cost)."""

    shadow: ShadowVersion
    call: ShadowCall
    production: SpanContext
    context: contextvars.Context


class _Spend:
    """One shadow run's costs, as its LLM spans end: into the budget, and whether any
    call went unpriced."""

    def __init__(self, budget: HourlyBudget) -> None:
        self._budget = budget
        self.calls = 0
        self.unpriced = False

    def __call__(self, cost_usd: float | None) -> None:
        self.calls += 1
        if cost_usd is None:
            self.unpriced = True
        else:
            self._budget.spend(cost_usd)


class ShadowRunner:
    """Runs shadow versions in the background; see the module docstring.

    ``workers`` threads run at most that many shadow calls at once; ``queue_size`` more
    wait. ``max_cost_per_hour_usd`` caps spending per clock hour (None: no cap); calls
    already running when it is reached finish, so it can be overshot by at most
    ``workers`` calls. ``sample_rate`` shadows that share of production calls, decided
    from the production call's trace id (the same trace always gets the same answer, for
    every shadow version), or at random when there is no production span. ``clock`` gives
    seconds since the epoch for the hourly window.

    ``timeout_s`` bounds each shadow, counted as ``timed_out`` past it. An async shadow is
    cancelled then and its worker moves on. A sync callable cannot be stopped from outside
    its thread: its worker stays with it, counted in ``stuck`` until the call returns (its
    result is then dropped and counted as ``timed_out``), and the pool serves with the
    other workers meanwhile; give the client a timeout of its own (``OpenAI(timeout=...)``)
    so that workers come back.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        queue_size: int = 100,
        max_cost_per_hour_usd: float | None = None,
        sample_rate: float = 1.0,
        timeout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_positive_int("workers", workers, "pass e.g. workers=2.")
        require_positive_int("queue_size", queue_size, "pass e.g. queue_size=100.")
        if max_cost_per_hour_usd is not None:
            cap = finite_number("max_cost_per_hour_usd", max_cost_per_hour_usd, "pass USD.")
            if cap < 0:
                raise ValueError(f"max_cost_per_hour_usd={cap!r} is negative; pass USD >= 0.")
        rate = finite_number("sample_rate", sample_rate, "pass a share, e.g. 0.1.")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample_rate={rate!r} is not a share; pass 0.0 to 1.0.")
        timeout = finite_number("timeout_s", timeout_s, "pass seconds, e.g. 60.")
        if timeout <= 0:
            raise ValueError(f"timeout_s={timeout!r} is not positive; pass seconds, e.g. 60.")
        require_callable("clock", clock, "pass e.g. time.time.")
        self._timeout = timeout
        self._queue_size = queue_size
        self._sample_bound = None if rate == 1.0 else int(rate * _TRACE_ID_SPACE)
        self._rate = rate
        self._budget = HourlyBudget(max_cost_per_hour_usd, clock)
        self._counts = dict.fromkeys(_COUNTS, 0)
        self._deadlines: dict[int, float] = {}  # by worker thread id, while it runs a shadow
        self._pending: deque[_Job] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._loop = BackgroundLoop()
        self._workers = [
            threading.Thread(target=self._work, name=f"closedloop-shadow-{n}", daemon=True)
            for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(
        self, shadow: ShadowVersion, call: ShadowCall, *, production: SpanContext | None = None
    ) -> bool:
        """Queue ``shadow`` to run through ``call``; never blocks, never raises for the
        shadow's sake. True when queued; False when sampled out or dropped (counted).

        ``production`` is the span the shadow links to; by default (or when it is not a
        ``SpanContext``) the latest generation call made inside the current
        ``closedloop.context`` block (so submit after the production call), else the
        current span.
        """
        require_callable("call", call, "pass call=lambda messages, model, parameters: ...")
        if not isinstance(production, SpanContext):
            production = latest_generation()
            if production is None:
                production = trace.get_current_span().get_span_context()
        bound = self._sample_bound
        if bound is not None and not self._sampled(production, bound):
            with self._ready:
                self._counts["sampled_out"] += 1
            return False
        job = _Job(shadow, call, production, contextvars.copy_context())
        counts = self._counts
        with self._ready:
            counts["submitted"] += 1
            if self._closed:
                counts["dropped_closed"] += 1
            elif self._budget.exhausted():
                counts["dropped_cost_cap"] += 1
            elif len(self._pending) >= self._queue_size:
                counts["dropped_queue_full"] += 1
            else:
                self._pending.append(job)
                self._ready.notify()
                return True
        return False

    def submit_for(self, selection: Selection, call: ShadowCall) -> int:
        """``submit`` every shadow version of a registry selection (``choice.shadows``),
        after the production call made with it; how many were queued."""
        return sum(self.submit(ShadowVersion.of(shadow), call) for shadow in selection.shadows)

    def _sampled(self, production: SpanContext, bound: int) -> bool:
        if production.is_valid:
            return production.trace_id & (_TRACE_ID_SPACE - 1) < bound
        return random.random() < self._rate

    def stats(self) -> ShadowStats:
        """A snapshot of the counts, the stuck workers and this hour's spending."""
        now = time.monotonic()
        with self._ready:
            counts = dict(self._counts)
            stuck = sum(deadline < now for deadline in self._deadlines.values())
        return ShadowStats(**counts, stuck=stuck, spent_usd_this_hour=self._budget.spent())

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return
                job = self._pending.popleft()
            self._run(job)

    def _run(self, job: _Job) -> None:
        """One shadow, checked against the cap as it starts; whatever it raises stays here.

        A ``BaseException`` too: an ``asyncio.CancelledError`` (or a ``SystemExit``) from a
        shadow would otherwise end the worker thread for good, uncounted. The runner's own
        shutdown raises nothing here: workers leave their loop in ``_work`` when closed."""
        if self._budget.exhausted():
            self._count("dropped_cost_cap")
            return
        spend = _Spend(self._budget)
        worker = threading.get_ident()
        deadline = time.monotonic() + self._timeout
        with self._ready:
            self._deadlines[worker] = deadline
        try:
            job.context.run(self._call, job, spend, deadline)
        except LoopTimeout:
            outcome = "timed_out"
        except BaseException as error:  # see the docstring
            health.record_failure("experiments.shadow", error)
            outcome = "failed"
        else:
            outcome = "timed_out" if time.monotonic() > deadline else "completed"
        with self._ready:
            del self._deadlines[worker]
            self._counts[outcome] += 1
            if outcome == "completed" and (spend.unpriced or spend.calls == 0):
                self._counts["unpriced"] += 1

    def _call(self, job: _Job, spend: _Spend, deadline: float) -> None:
        """Inside the request's copied context: the production span as parent (none: a
        trace of its own), shadow attributes, and the link to it on every LLM span."""
        shadow = job.shadow
        production = job.production
        links = (production,) if production.is_valid else ()
        parent = trace.set_span_in_context(trace.NonRecordingSpan(production), Context())
        token = otel_context.attach(parent)
        try:
            with (
                context(
                    prompt_name=shadow.prompt_name,
                    prompt_version=shadow.version,
                    variant="shadow",
                    experiment=shadow.experiment,
                    shadow=True,
                ),
                observed(CallObserver(links, spend)),
            ):
                result = job.call(list(shadow.messages), shadow.model, dict(shadow.parameters))
                if inspect.isawaitable(result):
                    self._loop.run(result, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            otel_context.detach(token)

    def _count(self, name: str) -> None:
        with self._ready:
            self._counts[name] += 1

    def close(self, *, drain: bool = True, timeout: float | None = CLOSE_TIMEOUT_S) -> ShadowStats:
        """Stop taking shadows. ``drain``: run those queued first; else drop them. Dropped
        work is counted in ``dropped_closed``. Returns when no shadow runs any more, or
        after ``timeout`` seconds (None: no limit, for a caller sure its shadows end):
        queued work is dropped then, and a call still running is left to end on its daemon
        thread. Idempotent; callable from a shadow itself."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        with self._ready:
            self._closed = True
            if not drain:
                self._drop_pending()
            self._ready.notify_all()
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join(left())
        with self._ready:
            self._drop_pending()
        if not any(worker.is_alive() for worker in self._workers):
            self._loop.close(left())
        return self.stats()

    def _drop_pending(self) -> None:
        self._counts["dropped_closed"] += len(self._pending)
        self._pending.clear()

    async def aclose(
        self, *, drain: bool = True, timeout: float | None = CLOSE_TIMEOUT_S
    ) -> ShadowStats:
        """``close`` for a coroutine: waits on a thread, never on the event loop."""
        return await asyncio.to_thread(self.close, drain=drain, timeout=timeout)

    def __enter__(self) -> ShadowRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ShadowRunner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
