"""``closedloop migrate --store URL``: what the compose ``schema`` job runs before the collector
writes. It applies every shipped migration to a new store, none to one up to date, and any
failure is one line on stderr naming the fix, exit status 1, never a traceback.

Run as a user runs it (``python -m closedloop.cli``), on real chDB stores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _support.stores import dead_store_url
from closedloop.store import SchemaSettings, connect
from closedloop.store._schema import migrations


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "closedloop.cli", "migrate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "60"},  # narrow: a wrapped line would show
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("closedloop migrate: ")
    return lines[0]


def test_applies_every_migration_once(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path}/store"
    shipped = [migration.name for migration in migrations(SchemaSettings())]

    first = run("--store", url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == (
        f"chdb://{tmp_path}/store, database closedloop: applied {len(shipped)} migration(s)"
    )
    assert [line.strip() for line in lines[1:]] == shipped

    second = run("--store", url, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"chdb://{tmp_path}/store, database closedloop: schema up to date, no migrations to apply"
    ]
    with connect(url, migrate=False) as store:
        tables = {row["name"] for row in store.query("SHOW TABLES FROM closedloop")}
    assert {"otel_traces", "otel_traces_recent", "llm_calls", "prompt_version_metrics"} <= tables


def test_default_store_is_created_under_the_working_directory(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".closedloop" / "store").is_dir()


def test_a_bad_url_is_one_line_naming_the_forms(tmp_path: Path) -> None:
    line = one_error_line(run("--store", "postgres://db/closedloop", cwd=tmp_path))
    assert "unknown scheme 'postgres'" in line
    assert "clickhouse://user:pass@host:8123/db" in line


def test_an_unreachable_server_is_one_line_naming_what_to_check(tmp_path: Path) -> None:
    url = dead_store_url()
    line = one_error_line(run("--store", url, cwd=tmp_path))
    assert "cannot reach ClickHouse at clickhouse://127.0.0.1:" in line
    assert line.endswith("check that the server runs, and --store's host, port, user and password")


def test_a_held_store_says_serve_migrates_it(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path}/store"
    with connect(url):
        line = one_error_line(run("--store", url, cwd=tmp_path))
    assert "is in use by" in line
    assert line.endswith("(closedloop serve migrates its store when it starts)")
