"""CLI commands on a chDB store that ``closedloop serve`` holds: they go through serve's API
(``POST /api/sql``, ``POST /api/rescue``) and print exactly what they print when they open
the store themselves; a ``serve.json`` left by a killed serve is ignored; the SQL route is
read-only by the engine's own ``readonly`` setting; beyond loopback it needs an API key.

Everything real: serve and the CLI as subprocesses, as a user starts them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from _support.collector import free_port
from _support.waiting import wait_for
from closedloop.sampling import load
from closedloop.store import connect
from server.serving import Serve, kept_by, keys, running, traffic
from server.test_serve_pipeline import feedback_for, production_policy


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str


API_KEY = "cli-through-serve-key-0123456789"
RECENT = "SELECT TraceId, SpanId, SpanName, Timestamp, Duration, SpanAttributes"
QUERIES = {
    "table": f"{RECENT} FROM closedloop.otel_traces_recent ORDER BY TraceId, SpanId LIMIT 4",
    "csv": f"{RECENT} FROM closedloop.otel_traces_recent ORDER BY TraceId, SpanId",
    "json": "SELECT SpanName, count() AS spans, max(Duration) AS longest, [1, 2] AS list, "
    "NULL AS nothing FROM closedloop.otel_traces_recent GROUP BY SpanName ORDER BY SpanName",
}


def launch(*args: str, api_key: str | None = None, stdin: str | None = None) -> Callable[[], Run]:
    """Start ``python -m closedloop.cli ...`` (with ``CLOSEDLOOP_API_KEY`` only when given);
    the function returned sends ``stdin`` and waits for it. Commands run side by side: each
    pays for Python's start and closedloop's imports, which take longer than their work."""
    env = {key: value for key, value in os.environ.items() if key != "CLOSEDLOOP_API_KEY"}
    env["COLUMNS"] = "200"  # rich's table width, the same for every run
    if api_key is not None:
        env["CLOSEDLOOP_API_KEY"] = api_key
    process = subprocess.Popen(
        [sys.executable, "-m", "closedloop.cli", *args],
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def finished() -> Run:
        stdout, stderr = process.communicate(stdin, timeout=120)
        return Run(process.returncode, stdout, stderr)

    return finished


def cli(*args: str, api_key: str | None = None) -> Run:
    return launch(*args, api_key=api_key)()


def sql_runs(store_url: str, query_file: Path, *, side_by_side: bool) -> list[Run]:
    """``closedloop sql`` in each format, the statement given each way (argument, stdin,
    ``--file``), and one with a typo; side by side only through serve (chDB lets one process
    at a time open the store)."""
    query_file.write_text(QUERIES["json"])
    store = f"--store={store_url}"
    commands = [
        (("sql", QUERIES["table"], "--format=table", store), None),
        (("sql", "-", "--format=csv", store), QUERIES["csv"]),
        (("sql", f"--file={query_file}", "--format=json", store), None),
        (("sql", "SELEC 1", store), None),
    ]
    if side_by_side:
        started = [launch(*args, stdin=stdin) for args, stdin in commands]
        return [finished() for finished in started]
    return [launch(*args, stdin=stdin)() for args, stdin in commands]


def recent_spans(serve: Serve) -> int:
    reply = serve.request(
        "POST",
        "/api/sql",
        json.dumps({"query": "SELECT count() AS n FROM closedloop.otel_traces_recent"}).encode(),
        {"Content-Type": "application/json"},
    )
    assert reply.status == 200, reply.body
    return int(json.loads(reply.body)["rows"][0][0])


def test_sql_through_serve_prints_what_it_prints_on_the_store_itself(tmp_path: Path) -> None:
    spans = [span for trace_spans in traffic(seed=61, plain_traces=4) for span in trace_spans]
    query_file = tmp_path / "query.sql"
    with running(tmp_path) as serve:
        serve.export(spans)
        wait_for(lambda: recent_spans(serve) == len(spans))  # the spool may hold some a while
        advert = json.loads((tmp_path / "serve-store" / "serve.json").read_text())
        through_serve = sql_runs(serve.store_url, query_file, side_by_side=True)  # serve's store
        assert serve.stop() == 0
    assert not (tmp_path / "serve-store" / "serve.json").exists()
    direct = sql_runs(serve.store_url, query_file, side_by_side=False)

    assert advert["url"] == serve.url and advert["loopback"] is True
    assert advert["pid"] == serve.process.pid
    assert through_serve == direct
    *answers, (typo_code, typo_out, typo_err) = direct
    assert all(code == 0 and err == "" for code, _, err in answers), answers
    table, csv, as_json = (out for _, out, _ in answers)
    assert "4 rows" in table and "DateTime64(9)" in table
    assert csv.count("\n") == len(spans) + 1
    answer = json.loads(as_json)
    assert [column["type"] for column in answer["columns"]][-2:] == [
        "Array(UInt8)",
        "Nullable(Nothing)",
    ]
    assert sum(row[1] for row in answer["rows"]) == len(spans)
    assert (typo_code, typo_out) == (1, "")
    assert typo_err.startswith("closedloop sql: Code: 62. DB::Exception: Syntax error")
    assert typo_err.count("\n") == 1  # one line, no traceback


def test_rescue_through_serve_counts_what_rescue_on_the_store_counts(tmp_path: Path) -> None:
    policy = production_policy(tmp_path, "1s")
    dropped = next(spans for spans in traffic(seed=62)[3:] if not kept_by(load(policy), spans))
    feedback = feedback_for(dropped[-1], seed=63)
    direct_url = f"chdb://{tmp_path}/direct-store"
    with connect(direct_url) as store:  # the same late feedback, written as serve writes it
        store.insert_spans([*dropped, feedback], "otel_traces_recent")
    direct = launch("rescue", "--since=1h", f"--store={direct_url}")

    with running(tmp_path, f"--policy={policy}", "--rescue-every=1h") as serve:
        serve.export(dropped)
        wait_for(lambda: serve.health()["pipeline"]["sampler"]["traces_decided"] != {})
        serve.export([feedback])  # late: the decision cache discards it
        runs: list[Run] = []

        def rescued() -> bool:  # serve leaves feedback younger than decision_wait to the sampler
            runs.append(cli("rescue", "--since=1h", f"--store={serve.store_url}"))
            assert runs[-1].code == 0, runs[-1].stderr
            return not runs[-1].stdout.startswith("rescued 0 ")

        wait_for(rescued, 60, "the rescue through serve never copied the trace")
        assert serve.stop() == 0

    expected = f"rescued 1 trace(s), {len(dropped) + 1} span(s) copied\n"
    assert direct() == Run(0, expected, "")
    assert runs[-1] == Run(0, expected, "")
    assert serve.span_ids("otel_traces") == keys([*dropped, feedback])  # each once


def test_a_stale_serve_json_is_ignored(tmp_path: Path) -> None:
    """``kill -9`` leaves ``serve.json`` behind, naming a dead process (or, once its pid is
    reused, a port nobody answers on)."""
    store_url = f"chdb://{tmp_path}/store"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / "store" / "serve.json"
    left.parent.mkdir()
    advert = {"url": "", "pid": 0, "started_at": "2025-06-01T12:00:00+00:00", "version": "0.1.0"}
    stale = {**advert, "url": f"http://127.0.0.1:{free_port()}", "pid": dead.pid, "loopback": True}
    left.write_text(json.dumps(stale))
    # the store is free: the command opens it, whatever the file says
    answer = cli("sql", "SELECT 2 AS two", "--format=csv", f"--store={store_url}")
    assert answer == Run(0, "two\n2\n", "")

    # held by a process that is not serve: the file names a dead pid, then a closed port
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import closedloop.store as s, sys; held = s.connect({store_url!r}); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    errors = []
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for pid, port in ((dead.pid, free_port()), (holder.pid, free_port())):
            url = f"http://127.0.0.1:{port}"
            left.write_text(json.dumps({**advert, "pid": pid, "url": url, "loopback": True}))
            errors.append(cli("sql", "SELECT 1", f"--store={store_url}"))
    finally:
        holder.communicate("")

    for error in errors:
        assert (error.code, error.stdout) == (1, "")
        assert error.stderr.startswith("closedloop sql: the chDB store at ")
        assert f"in use by process {holder.pid} " in error.stderr
        assert "No closedloop serve answers for this store" in error.stderr
        assert error.stderr.count("\n") == 1


def test_the_sql_route_is_read_only_by_the_engine(tmp_path: Path) -> None:
    outfile = tmp_path / "written-by-sql"
    refused = {
        "INSERT INTO closedloop.otel_traces_recent (TraceId, SpanId) VALUES ('a', 'b')": "READONLY",
        "DROP TABLE closedloop.otel_traces": "READONLY",
        "ALTER TABLE closedloop.otel_traces DELETE WHERE 1": "READONLY",
        "ALTER TABLE closedloop.otel_traces ADD COLUMN x UInt8": "READONLY",
        "SET readonly = 0": "READONLY",
        "SELECT 1 SETTINGS readonly = 0": "READONLY",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')": "READONLY",
        "SELECT 1; DROP TABLE closedloop.otel_traces": "Multi-statements are not allowed",
        f"SELECT 1 INTO OUTFILE '{outfile}'": "only reading is allowed",
        "KILL QUERY WHERE 1": "only reading is allowed",
        "SELECT 1 FORMAT CSV": "FORMAT clause",
    }
    json_type = {"Content-Type": "application/json"}
    with running(tmp_path) as serve:
        answers = {
            query: serve.request(
                "POST", "/api/sql", json.dumps({"query": query}).encode(), json_type
            )
            for query in refused
        }
        tables = serve.request(
            "POST", "/api/sql", b'{"query": "SHOW TABLES FROM closedloop"}', json_type
        )
        not_json = serve.request(
            "POST", "/api/sql", b'{"query": "SELECT 1"}', {"Content-Type": "text/plain"}
        )
        empty = serve.request("POST", "/api/sql", b'{"query": " "}', json_type)
        bad_since = serve.request("POST", "/api/rescue?since=yesterday", b"")
        assert serve.stop() == 0

    for query, reason in refused.items():
        assert answers[query].status == 400, (query, answers[query].body)
        assert reason in json.loads(answers[query].body)["error"], (query, answers[query].body)
    assert not outfile.exists()
    assert tables.status == 200
    assert ["otel_traces"] in json.loads(tables.body)["rows"]
    assert serve.rows("otel_traces") == []  # the table is still there, as it was
    assert serve.rows("otel_traces_recent") == []  # and nothing was inserted
    assert not_json.status == 415
    assert (empty.status, json.loads(empty.body)["field"]) == (400, "query")
    assert (bad_since.status, json.loads(bad_since.body)["field"]) == (400, "since")


def test_beyond_loopback_the_cli_sends_closedloop_api_key(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(API_KEY + "\n")
    with running(tmp_path, "--host=0.0.0.0", f"--api-key-file={tmp_path / 'keys'}") as serve:
        advert = json.loads((tmp_path / "serve-store" / "serve.json").read_text())
        query = ("sql", "SELECT 3 AS three", "--format=csv", f"--store={serve.store_url}")
        missing, wrong, right = (
            launch(*query, api_key=key) for key in (None, f"not-{API_KEY}", API_KEY)
        )
        runs = missing(), wrong(), right()
        assert serve.stop() == 0

    assert (advert["url"], advert["loopback"]) == (serve.url, False)  # 0.0.0.0: on 127.0.0.1
    assert runs[2] == Run(0, "three\n3\n", "")
    assert [run.code for run in runs[:2]] == [1, 1]
    assert "wants an API key: set CLOSEDLOOP_API_KEY" in runs[0].stderr
    assert "refused the key in CLOSEDLOOP_API_KEY" in runs[1].stderr
