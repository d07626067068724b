"""``POST /api/sql`` cannot stall ingest or hold serve's memory: statements run on two
worker threads of their own (more at once get 429 with ``Retry-After``), and under engine
limits on time, memory and the answer's size, each named in the error it ends with.

Through a real serve for the threads and the answer's size; in this process, on a real
chDB store, with small limits, for time and memory (serve's own limits take a minute and a
GiB to reach).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from _support.waiting import wait_for
from closedloop.store import connect
from closedloop.store._readonly_sql import SqlLimits, SqlRefused, readonly_sql
from server.serving import Reply, Serve, running, traffic
from server.support import protobuf_request

STATEMENTS = 42
"""More than the 40 threads ingest, /healthz and the query API share."""
SLEEPING = "SELECT sum(sleepEachRow(0.00004)) AS slept FROM numbers(75000)"
"""Three seconds asleep, in two blocks (the engine sleeps at most 3 s a block): no CPU."""
JSON = {"Content-Type": "application/json"}


def sql(serve: Serve, statement: str) -> Reply:
    return serve.request("POST", "/api/sql", json.dumps({"query": statement}).encode(), JSON)


def test_statements_beyond_two_wait_their_turn_and_ingest_does_not(tmp_path: Path) -> None:
    spans = traffic(seed=71, plain_traces=1)[0]
    finished: list[tuple[str, int]] = []  # (what, status) in the order they ended
    lock = threading.Lock()

    def ask(serve: Serve) -> None:
        reply = sql(serve, SLEEPING)
        with lock:
            finished.append(("sql", reply.status))
        if reply.status == 429:
            assert reply.headers["retry-after"] == "1"
            assert "retry in 1 s" in json.loads(reply.body)["error"]

    def refused() -> int:
        with lock:
            return sum(status == 429 for _, status in finished)

    with running(tmp_path) as serve:
        askers = [threading.Thread(target=ask, args=(serve,)) for _ in range(STATEMENTS)]
        for asker in askers:
            asker.start()
        # all but two are turned away at once: the two that run are asleep in the engine
        wait_for(lambda: refused() == STATEMENTS - 2, 60, "serve ran more than two at once")
        ingest = serve.post(protobuf_request(spans).SerializeToString())
        with lock:
            finished.append(("ingest", ingest.status))
        for asker in askers:
            asker.join()
        huge = sql(serve, "SELECT number, toString(number) AS text FROM numbers(10000000)")
        assert serve.stop() == 0

    assert ingest.status == 200
    assert finished[-3:] == [("ingest", 200), ("sql", 200), ("sql", 200)]
    assert huge.status == 400
    message = json.loads(huge.body)["error"]
    assert "(TOO_MANY_ROWS_OR_BYTES)" in message
    assert "limited to 100,000 rows and 16 MiB" in message and "add LIMIT" in message


@pytest.mark.parametrize(
    ("statement", "limits", "named"),
    [
        (
            "SELECT count() FROM numbers(100000000000) WHERE cityHash64(number) = 0",
            SqlLimits(max_execution_time_s=1),
            "(TIMEOUT_EXCEEDED); statements here stop after 1 s (max_execution_time)",
        ),
        (
            "SELECT groupArray(number) FROM numbers(100000000)",
            SqlLimits(max_memory_bytes=64 * 1024 * 1024),
            "(MEMORY_LIMIT_EXCEEDED); statements here may use 64 MiB (max_memory_usage)",
        ),
    ],
)
def test_a_statement_over_a_limit_ends_with_an_error_naming_it(
    tmp_path: Path, statement: str, limits: SqlLimits, named: str
) -> None:
    with connect(f"chdb://{tmp_path}/store") as store:
        with pytest.raises(SqlRefused) as refusal:
            readonly_sql(store, statement, limits)
        assert readonly_sql(store, "SELECT 1 AS one").rows == [[1]]  # the store is fine
    assert named in str(refusal.value)
    assert str(refusal.value).count("DB::Exception") == 1
