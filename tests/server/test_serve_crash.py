"""kill -9 of ``closedloop serve`` while clients send spans: after a restart on the same
store and state directory, every span of every acknowledged request is stored exactly once,
and no span is stored twice at all.

serve answers 200 only once a request's spans are fsynced in its spool (written ahead of
the insert), and a replay is deduplicated by each batch's token, so nothing a client was
told is stored may be lost or doubled by a crash at any moment. The test is the client:
a few threads post a bounded stream of OTLP/HTTP protobuf requests of generated LLM
traffic (calls on one day, feedback spread over later ones, so inserts span partitions)
and note which got 200. At a moment drawn from the seed serve gets SIGKILL; a new serve on
the same store adopts and replays the spool, is stopped with SIGTERM (exit 0), and every
span is counted by (TraceId, SpanId) in both tiers and in ``llm_calls``.

Store speeds: a fast store; a slow one (a view that sleeps on each recent-tier insert)
with a small memory queue, so inserts stay small (half of memory each) and the spool backs
up behind them; and a stuck one whose coalesced insert takes 3 s, so the insert a kill
interrupts may have written rows that the replay sends again. The views are dropped
before the restart: the replay need not wait.

Sampling decisions are in memory, as in the collector: a trace acknowledged but undecided
at the crash is never decided, so ``otel_traces`` is checked for duplicates, not for
completeness; how many kept traces it lacks is recorded in the test's user properties.
"""

from __future__ import annotations

import http.client
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import batches, generate_traffic
from _support.waiting import wait_for
from closedloop.sampling import load
from server.serving import Serve, kept_by, start
from server.support import protobuf_request

THREADS = 4
SPANS_PER_REQUEST = 8
APP_REQUESTS = 120  # about 90 OTLP requests of 8 spans
TABLES = ("otel_traces_recent", "otel_traces", "llm_calls")
REPLAY_TIMEOUT_S = 120
"""Only keeps a broken run from hanging; a replay takes a second or two."""

# How long a view makes each insert into the recent tier sleep, and serve's options there.
# serve spools a batch that has waited 2 s (the exporter's spool_after_s): 3 s is longer.
SPEEDS: dict[str, tuple[float | None, tuple[str, ...]]] = {
    "fast store": (None, ()),
    "slow store": (0.3, ("--max-queue-spans=16",)),
    "stuck store": (3.0, ()),
}

Key = tuple[str, str]


def key(span: ReadableSpan) -> Key:
    """(TraceId, SpanId) as the store writes them."""
    context = span.get_span_context()
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def llm_call(span: ReadableSpan) -> bool:
    """A span ``llm_calls`` gets a row for (see its view)."""
    attributes = span.attributes or {}
    return bool(attributes.get("gen_ai.operation.name")) and span.name != "closedloop.feedback"


@dataclass
class Stream:
    """The client's side: requests sent by a few threads, and the status each one got."""

    requests: list[list[ReadableSpan]]
    bodies: list[bytes] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    finished_threads: int = 0
    killed: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.bodies = [protobuf_request(spans).SerializeToString() for spans in self.requests]

    @property
    def acknowledged(self) -> set[int]:
        with self.changed:
            return {index for index, status in self.statuses.items() if status == 200}

    def send(self, serve: Serve, first: int) -> None:
        """Post every THREADS-th request from ``first`` until serve is gone."""
        try:
            for index in range(first, len(self.bodies), THREADS):
                if self.killed.is_set():
                    return
                try:
                    status = serve.post(self.bodies[index]).status
                except (OSError, http.client.HTTPException):
                    return  # killed: this request and the rest are not acknowledged
                with self.changed:
                    self.statuses[index] = status
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.finished_threads += 1
                self.changed.notify_all()

    def wait_for_acknowledgements(self, count: int) -> None:
        with self.changed:
            reached = self.changed.wait_for(
                lambda: (
                    len([s for s in self.statuses.values() if s == 200]) >= count
                    or self.finished_threads == THREADS
                ),
                timeout=REPLAY_TIMEOUT_S,
            )
        assert reached, f"serve acknowledged fewer than {count} requests: {self.statuses}"


def policy_file(tmp_path: Path) -> Path:
    """The packaged policy deciding after 1 s instead of 10, so traces are kept (and written
    to ``otel_traces``) before the crash."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["processors"]["tail_sampling"]["decision_wait"] = "1s"
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(config))
    return policy


def slow_down(url: str, seconds: float | None) -> None:
    """Make every insert into the recent tier take ``seconds`` longer (a sleeping view)."""
    if seconds is None:
        return
    with cs.connect(url) as store:
        database = store.database
        store.execute(f"CREATE TABLE {database}.slow_sink (x UInt8) ENGINE = Null")
        store.execute(
            f"CREATE MATERIALIZED VIEW {database}.slow_mv TO {database}.slow_sink AS "
            f"SELECT sleep({seconds}) AS x FROM {database}.otel_traces_recent LIMIT 1"
        )


def as_the_crash_left_it(url: str) -> dict[str, int]:
    """Rows in each tier before any replay (more than serve counted as inserted when an
    insert under way at the kill had written them); the slowing view goes, so the replay
    need not wait."""
    with cs.connect(url) as store:
        database = store.database
        store.execute(f"DROP VIEW IF EXISTS {database}.slow_mv")
        return {
            table: store.query(f"SELECT count() AS n FROM {database}.{table}")[0]["n"]
            for table in TABLES[:2]
        }


def stored(url: str) -> dict[str, Counter[Key]]:
    """Rows per (TraceId, SpanId) in each table, once no serve holds the store."""
    with cs.connect(url) as store:
        database = store.database
        rows = {
            "otel_traces_recent": store.query(
                f"SELECT TraceId AS t, SpanId AS s FROM {database}.otel_traces_recent"
            ),
            "otel_traces": store.query(
                f"SELECT TraceId AS t, SpanId AS s FROM {database}.otel_traces"
            ),
            "llm_calls": store.query(
                f"SELECT trace_id AS t, span_id AS s FROM {database}.llm_calls"
            ),
        }
    return {table: Counter((row["t"], row["s"]) for row in found) for table, found in rows.items()}


@dataclass(frozen=True)
class Moment:
    """When to kill: ``pause`` seconds after ``after`` acknowledgements (or the end of the
    stream) and, with ``kept``, once the sampler has kept spans (so ``otel_traces`` is being
    written). Drawn from the seed; a moment, never a bound on anything."""

    after: int
    pause: float
    kept: bool


def kill_moment(rng: random.Random, moment: str, requests: int) -> Moment:
    pause = rng.choice((0.0, rng.uniform(0.0, 0.3)))
    if moment == "mid-stream":
        return Moment(rng.randrange(requests // 4, 3 * requests // 4), pause, kept=False)
    return Moment(rng.randint(1, 2 * THREADS), pause, kept=moment == "once kept")


def kept_and_written(serve: Serve) -> bool:
    """The sampler has kept spans, and every span given to the exporter so far is inserted,
    in the spool or dropped: ``otel_traces`` batches are in the store or the spool (serve
    writes every batch ahead to the spool; a batch whose insert just ended may count in
    both for a moment)."""
    pipeline = serve.health()["pipeline"]
    exporter = pipeline["store"]
    given = pipeline["spans_accepted"] + pipeline["spans_kept"]
    handled = exporter["exported_spans"] + exporter["spool_spans"] + exporter["dropped_spans"]
    return bool(pipeline["spans_kept"]) and handled >= given


def run_and_kill(serve: Serve, stream: Stream, moment: Moment) -> dict[str, Any]:
    """Stream to serve and SIGKILL it at ``moment``; its last /healthz, just before."""
    clients = [threading.Thread(target=stream.send, args=(serve, n)) for n in range(THREADS)]
    try:
        for client in clients:
            client.start()
        stream.wait_for_acknowledgements(moment.after)
        if moment.kept:
            wait_for(lambda: kept_and_written(serve), REPLAY_TIMEOUT_S, "nothing kept, or written")
        time.sleep(moment.pause)
        health = serve.health()
    finally:
        code = serve.stop(signal.SIGKILL)
        stream.killed.set()
        for client in clients:
            client.join()
    assert code == -signal.SIGKILL, f"serve ended before the kill:\n{serve.log.read_text()}"
    pipeline: dict[str, Any] = health["pipeline"]
    return pipeline


@dataclass(frozen=True)
class Case:
    speed: str
    moment: str
    seed: int


CASES = [
    pytest.param(Case("fast store", "early", 0), id="fast-early-0"),
    pytest.param(Case("fast store", "mid-stream", 1), id="fast-mid-1"),
    pytest.param(Case("slow store", "mid-stream", 2), id="slow-mid-2"),
    pytest.param(Case("slow store", "once kept", 3), id="slow-kept-3"),
    pytest.param(Case("stuck store", "once kept", 4), id="stuck-kept-4"),
]


@pytest.mark.parametrize("case", CASES)
def test_kill_9_of_serve_loses_no_acknowledged_span_and_stores_none_twice(
    tmp_path: Path, case: Case, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{case.speed}-{case.moment}-{case.seed}")
    url = f"chdb://{tmp_path}/store"
    delay, speed_options = SPEEDS[case.speed]
    policy = policy_file(tmp_path)
    options = (f"--policy={policy}", *speed_options)
    traffic = generate_traffic(APP_REQUESTS, seed=case.seed, days=1).spans
    sent = {key(span) for span in traffic}
    assert len(sent) == len(traffic), "generated span ids must be unique"
    stream = Stream(list(batches(traffic, SPANS_PER_REQUEST)))

    slow_down(url, delay)
    killed = start(tmp_path, *options, store_url=url)
    before_kill = run_and_kill(killed, stream, kill_moment(rng, case.moment, len(stream.requests)))
    killed_log = killed.log.read_text()
    acknowledged = [span for index in stream.acknowledged for span in stream.requests[index]]
    assert acknowledged

    rows_at_crash = as_the_crash_left_it(url)
    restarted = start(tmp_path, *options, store_url=url)  # the same store and state dir

    def replayed() -> bool:
        exporter = restarted.health()["pipeline"]["store"]
        return exporter["spool_spans"] == 0 and exporter["queued_spans"] == 0

    try:
        wait_for(replayed, REPLAY_TIMEOUT_S, "the restart did not replay its spool")
        replay = restarted.health()["pipeline"]["store"]
    finally:
        code = restarted.stop()
    assert code == 0, restarted.log.read_text()
    adopted = replay["adopted_spans"]
    assert (replay["exported_spans"], replay["dropped_spans"], replay["rejected_spans"]) == (
        adopted,
        0,
        0,
    ), f"the replay lost spans: {replay}"
    if case.speed == "stuck store":  # an insert takes 3 s: the spool cannot have drained
        assert adopted, f"nothing was left to replay:\n{killed_log}"

    counts = stored(url)
    recent = counts["otel_traces_recent"]
    expected = {key(span) for span in acknowledged}
    assert {k: recent[k] for k in expected} == dict.fromkeys(expected, 1), (
        "an acknowledged span is missing from the recent tier or stored twice"
    )
    for table in TABLES:
        twice = {k: n for k, n in counts[table].items() if n > 1}
        assert not twice, f"{table}: stored more than once: {twice}"
        assert set(counts[table]) <= sent, f"{table}: a span nobody sent"
    assert set(counts["otel_traces"]) <= set(recent), "a sampled span the recent tier lacks"
    calls = {key(span) for span in acknowledged if llm_call(span)}
    assert {k: counts["llm_calls"][k] for k in calls} == dict.fromkeys(calls, 1), (
        "an acknowledged LLM call is missing from llm_calls or counted twice"
    )

    # Not asserted (decisions are in memory), recorded: the traces the crash left undecided,
    # and of the acknowledged traces the policy keeps, those otel_traces lacks (the restart's
    # rescue brings back the ones with feedback).
    sampler = before_kill["sampler"]
    kept = {trace_id for trace_id, _ in kept_by(load(policy), acknowledged)}
    sampled = {trace_id for trace_id, _ in counts["otel_traces"]}
    request.node.user_properties.extend(
        [
            ("requests_acknowledged", f"{len(stream.acknowledged)}/{len(stream.requests)}"),
            ("rows_at_crash", rows_at_crash),
            ("spans_adopted_on_restart", adopted),
            (
                "traces_undecided_at_crash",
                sampler["traces_received"] - sum(sampler["traces_decided"].values()),
            ),
            ("kept_traces_missing_from_otel_traces", f"{len(kept - sampled)}/{len(kept)}"),
        ]
    )
