"""CLI commands on a chDB store that ``closedloop serve`` holds: they go through serve's API
(``POST /api/sql``, ``POST /api/rescue``) and print exactly what they print when they open
the store themselves; a ``serve.json`` left by a killed serve, or naming a port someone
else took since, is ignored; the SQL route is read-only by the engine's own ``readonly``
setting, and refuses what reads beyond the store; beyond loopback it needs an API key; a
command never creates a store.

Everything real: serve and the CLI as subprocesses, as a user starts them.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    # the store's database is the default one; decimals and infinities come back exact
    "unqualified": "SELECT count() AS spans, toDecimal128('1.123456789012345678', 18) AS exact, "
    "-inf AS below FROM otel_traces_recent",
}


def launch(
    *args: str, api_key: str | None = None, stdin: str | None = None, cwd: Path | None = None
) -> Callable[[], Run]:
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
        cwd=cwd,
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
        (("sql", QUERIES["unqualified"], "--format=csv", store), None),
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
    table, csv, as_json, unqualified = (out for _, out, _ in answers)
    assert "4 rows" in table and "DateTime64(9)" in table
    assert csv.count("\n") == len(spans) + 1
    answer = json.loads(as_json)
    assert [column["type"] for column in answer["columns"]][-2:] == [
        "Array(UInt8)",
        "Nullable(Nothing)",
    ]
    assert sum(row[1] for row in answer["rows"]) == len(spans)
    assert unqualified == f"spans,exact,below\n{len(spans)},1.123456789012345678,-inf\n"
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


@contextmanager
def unrelated_service() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A local HTTP service that answers anything with 200 and JSON (as another serve
    would, with its own instance token): its URL, and the requests it got."""
    got: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            got.append((self.command, self.path))
            body = json.dumps({"instance": "another-serve", "traces": 0, "spans": 0}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


def test_a_stale_serve_json_is_ignored(tmp_path: Path) -> None:
    """``kill -9`` leaves ``serve.json`` behind, naming a dead process, or once its pid is
    reused, a port nobody answers on, or one another service took since: the client checks
    the file's instance token before it sends anything else."""
    store_url = f"chdb://{tmp_path}/store"
    with connect(store_url):
        pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / "store" / "serve.json"
    advert = {
        "url": "",
        "pid": 0,
        "started_at": "2025-06-01T12:00:00+00:00",
        "version": "0.1.0",
        "instance": "the-serve-that-was-killed",
    }
    stale = {**advert, "url": f"http://127.0.0.1:{free_port()}", "pid": dead.pid, "loopback": True}
    left.write_text(json.dumps(stale))
    # the store is free: the command opens it, whatever the file says
    answer = cli("sql", "SELECT 2 AS two", "--format=csv", f"--store={store_url}")
    assert answer == Run(0, "two\n2\n", "")

    # held by a process that is not serve: the file names a dead pid, then a closed port,
    # then a port another service answers on
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
        with unrelated_service() as (taken, got):
            for pid, url in (
                (dead.pid, f"http://127.0.0.1:{free_port()}"),
                (holder.pid, f"http://127.0.0.1:{free_port()}"),
                (holder.pid, taken),
            ):
                left.write_text(json.dumps({**advert, "pid": pid, "url": url, "loopback": True}))
                errors.append(cli("sql", "SELECT 1", f"--store={store_url}"))
            errors.append(cli("rescue", f"--store={store_url}"))
    finally:
        holder.communicate("")

    assert got == [("GET", "/api/instance")] * 2  # the token, and nothing else

    for error, command in zip(errors, ["sql"] * 3 + ["rescue"], strict=True):
        assert (error.code, error.stdout) == (1, "")
        assert error.stderr.startswith(f"closedloop {command}: the chDB store at ")
        assert f"in use by process {holder.pid} " in error.stderr
        assert "No closedloop serve answers for this store" in error.stderr
        assert error.stderr.count("\n") == 1


def test_the_sql_route_is_read_only_by_the_engine(tmp_path: Path) -> None:
    outfile = tmp_path / "written-by-sql"
    secret = tmp_path / "secret.txt"
    secret.write_text("the-secret-serve-can-read\n")
    refused = {
        "INSERT INTO closedloop.otel_traces_recent (TraceId, SpanId) VALUES ('a', 'b')": "READONLY",
        "DROP TABLE closedloop.otel_traces": "READONLY",
        "ALTER TABLE closedloop.otel_traces DELETE WHERE 1": "READONLY",
        "ALTER TABLE closedloop.otel_traces ADD COLUMN x UInt8": "READONLY",
        "SET readonly = 0": "READONLY",
        "SELECT 1 SETTINGS readonly = 0": "READONLY",
        "SELECT 1 SETTINGS max_execution_time = 3600": "Cannot modify 'max_execution_time'",
        f"SELECT * FROM file('{secret}', 'LineAsString')": "file() reads files",
        f"SELECT file('{secret}') AS contents": "file() reads files",
        f"select FiLe ('{secret}')": "file() reads files",
        f"SELECT arrayMap(path -> `file`(path), ['{secret}'])": "file() reads files",
        "SELECT 1; DROP TABLE closedloop.otel_traces": "Multi-statements are not allowed",
        f"SELECT 1 INTO OUTFILE '{outfile}'": "only reading is allowed",
        "KILL QUERY WHERE 1": "only reading is allowed",
        "SELECT 1 FORMAT CSV": "FORMAT clause",
        "SELECT 1 format Null": "FORMAT clause",
        "SELECT 1 FORMAT JSONCompact": "FORMAT clause",
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
        bad_since = serve.request("POST", "/api/rescue?since=yesterday", b"", json_type)
        cross_origin = serve.request(  # what a web page may send without a preflight
            "POST",
            "/api/rescue",
            b"",
            {"Content-Type": "text/plain", "Origin": "http://elsewhere.invalid"},
        )
        set_statement = serve.request(
            "POST", "/api/sql", b'{"query": "SET allow_ddl = 1"}', json_type
        )
        assert serve.stop() == 0

    for query, reason in refused.items():
        assert answers[query].status == 400, (query, answers[query].body)
        error = json.loads(answers[query].body)["error"]
        assert reason in error, (query, error)
        assert error.count("DB::Exception") <= 1, error  # the engine's innermost message
        assert b"the-secret" not in answers[query].body
    assert not outfile.exists()
    assert tables.status == 200
    assert ["otel_traces"] in json.loads(tables.body)["rows"]
    assert serve.rows("otel_traces") == []  # the table is still there, as it was
    assert serve.rows("otel_traces_recent") == []  # and nothing was inserted
    assert not_json.status == 415
    assert cross_origin.status == 415
    # SET passes readonly = 1, and binds nothing: the session lasts one statement
    assert (set_statement.status, json.loads(set_statement.body)) == (
        200,
        {"columns": [], "rows": []},
    )
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
    assert "refused the key in CLOSEDLOOP_API_KEY; set it to one of its keys" in runs[1].stderr


def test_commands_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "store"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    runs = [
        launch("sql", "SELECT 1", f"--store=chdb://{missing}"),
        launch("rescue", f"--store=chdb://{missing}"),
        launch("sql", "SELECT 1", cwd=elsewhere),  # the default store, relative to the cwd
    ]
    (sql, rescue, default) = (finished() for finished in runs)

    for run, command, path in (
        (sql, "sql", missing),
        (rescue, "rescue", missing),
        (default, "sql", elsewhere / ".closedloop" / "store"),
    ):
        assert (run.code, run.stdout) == (1, "")
        assert run.stderr.startswith(f"closedloop {command}: no closedloop store at {path}: ")
        assert "start `closedloop serve --store " in run.stderr and "or pass --store" in run.stderr
    assert not (tmp_path / "nowhere").exists()
    assert list(elsewhere.iterdir()) == []
