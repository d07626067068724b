"""``otel_traces`` is the contrib ClickHouse exporter's traces table, column for column.

The exporter's own SQL templates are read from its Go module at the release pinned in
``collector/contrib-release.txt``, rendered as the exporter renders them, created side by
side in chDB, and compared through ``system.*`` tables, once closedloop's migrations
that alter the collector's tables (011: a deduplication window) have run on both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import closedloop.store as cs
from _support.tools import require_go
from closedloop.store._schema import SchemaSettings, migrations

ROOT = Path(__file__).resolve().parents[2]
MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
RELEASE = (ROOT / "collector" / "contrib-release.txt").read_text().strip()
TTL_DAYS = 90


def exporter_source(tmp_path: Path) -> Path:
    require_go("fetch the contrib exporter's SQL templates")
    workdir = tmp_path / "gomod"
    workdir.mkdir()
    subprocess.run(
        ["go", "mod", "init", "schemacheck"], cwd=workdir, check=True, capture_output=True
    )
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{RELEASE}"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        timeout=600,
    )
    return Path(json.loads(result.stdout)["Dir"])


def go_sprintf(template: str, *args: str) -> str:
    """The subset of Go's fmt.Sprintf the templates use: %q (quoted string) and %s."""
    values = iter(args)

    def substitute(match: re.Match[str]) -> str:
        value = next(values)
        return json.dumps(value) if match.group(0) == "%q" else value

    return re.sub(r"%[qs]", substitute, template)


def contrib_statements(source: Path, database: str) -> list[str]:
    templates = source / "internal" / "sqltemplates"
    ttl = f"TTL toDateTime(Timestamp) + toIntervalDay({TTL_DAYS})"
    ttl_start = f"TTL toDateTime(Start) + toIntervalDay({TTL_DAYS})"
    table = "otel_traces"
    return [
        go_sprintf(
            (templates / "traces_table.sql").read_text(),
            database, table, "", "MergeTree()", ttl,
        ),
        go_sprintf(
            (templates / "traces_id_ts_lookup_table.sql").read_text(),
            database, table, "", "MergeTree()", ttl_start,
        ),
        go_sprintf(
            (templates / "traces_id_ts_lookup_mv.sql").read_text(),
            database, table, "", database, table, database, table,
        ),
    ]  # fmt: skip


def closedloop_alterations(database: str) -> list[str]:
    """Statements of closedloop's migrations that alter the collector's own tables."""
    collector_tables = re.compile(
        rf"^ALTER TABLE {database}\.otel_traces(_trace_id_ts)?\s", re.MULTILINE
    )
    return [
        statement
        for migration in migrations(SchemaSettings(database=database))
        for statement in migration.statements
        if collector_tables.search(statement)
    ]


def describe(store, database: str) -> dict[str, object]:
    params = {"db": database}
    return {
        "columns": store.query(
            "SELECT table, position, name, type, compression_codec FROM system.columns "
            "WHERE database = {db:String} AND table LIKE 'otel_traces%' "
            "AND table != 'otel_traces_recent' ORDER BY table, position",
            params,
        ),
        "tables": store.query(
            "SELECT name, engine, partition_key, sorting_key, primary_key, "
            "replaceAll(create_table_query, {db:String} || '.', '') AS ddl "
            "FROM system.tables WHERE database = {db:String} AND name LIKE 'otel_traces%' "
            "AND name != 'otel_traces_recent' ORDER BY name",
            params,
        ),
        "indices": store.query(
            "SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices "
            "WHERE database = {db:String} AND table LIKE 'otel_traces%' "
            "AND table != 'otel_traces_recent' ORDER BY table, name",
            params,
        ),
    }


def test_otel_traces_matches_the_contrib_exporter_table(tmp_path):
    source = exporter_source(tmp_path)
    store = cs.connect(f"chdb://{tmp_path}/store?traces_ttl_days={TTL_DAYS}")
    try:
        store.execute("CREATE DATABASE contrib")
        for statement in contrib_statements(source, "contrib"):
            store.execute(statement)
        alterations = closedloop_alterations("contrib")
        assert len(alterations) == 2  # 011, on otel_traces and otel_traces_trace_id_ts
        for statement in alterations:
            store.execute(statement)
        ours, theirs = describe(store, "closedloop"), describe(store, "contrib")
        assert len(theirs["columns"]) == 22 + 3 + 3  # traces, trace-id lookup table and its view
        assert ours == theirs
    finally:
        store.close()


def test_the_pinned_release_is_one_version_string():
    assert re.fullmatch(r"v\d+\.\d+\.\d+", RELEASE)
