"""Migrations on the real chDB engine: applied once each, checksummed, views from their files.

Edits to shipped files are made to a copy of the closedloop package that a child process
imports, never to the package under test.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import closedloop
import closedloop.store as cs
from closedloop.store import _ledger as ledger
from closedloop.store._schema import SchemaSettings, migrations, views
from closedloop.store._server_store import ClickHouseServerStore

PACKAGE = Path(closedloop.__file__).resolve().parent
SQL = PACKAGE / "store" / "sql"
FIX = "restore it from git; schema changes go in a new numbered migration"

# The ledger as closedloop created it before checksums (what older stores hold).
LEDGER_BEFORE_CHECKSUMS = (
    "CREATE DATABASE IF NOT EXISTS closedloop",
    "CREATE TABLE IF NOT EXISTS closedloop.closedloop_migrations ("
    "version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)"
    ") ENGINE = MergeTree() ORDER BY version",
)


@pytest.fixture(params=["chdb", "clickhouse-connect"])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path):
    """A store on a fresh directory, not migrated yet, through either store class (the
    server's code runs through clickhouse-connect's in-process chDB backend)."""
    if request.param == "chdb":
        opened = cs.connect(f"chdb://{tmp_path}/store", migrate=False)
    else:
        opened = ClickHouseServerStore(SchemaSettings(), dsn=f"chdb://{tmp_path}/store")
    yield opened
    opened.close()


def tables(store) -> list[dict[str, object]]:
    """Every table (not view) with its definition and when its metadata last changed."""
    return store.query(
        "SELECT name, create_table_query, metadata_modification_time FROM system.tables "
        "WHERE database = 'closedloop' AND engine != 'View' ORDER BY name"
    )


def ledger_rows(store) -> list[dict[str, object]]:
    return store.query(
        "SELECT version, name, checksum FROM closedloop.closedloop_migrations "
        "ORDER BY version, checksum"
    )


def view_names(store) -> set[str]:
    rows = store.query(
        "SELECT name FROM system.tables WHERE database = 'closedloop' AND engine = 'View'"
    )
    return {row["name"] for row in rows}


def shipped_checksums() -> dict[int, str]:
    return {m.version: m.checksum for m in migrations(SchemaSettings())}


def migrate_before_checksums(store, up_to: int) -> None:
    """A store as an older closedloop left it: migrations applied, no checksums recorded."""
    for statement in LEDGER_BEFORE_CHECKSUMS:
        store.execute(statement)
    for migration in migrations(store.settings):
        if migration.version <= up_to:
            for statement in migration.statements:
                store.execute(statement)
            store.execute(
                "INSERT INTO closedloop.closedloop_migrations (version, name) "
                "VALUES ({version:UInt32}, {name:String})",
                {"version": migration.version, "name": migration.name},
            )


def run_edited(
    tmp_path: Path, edit: Callable[[Path], None], url: str
) -> subprocess.CompletedProcess:
    """``connect(url)`` (which migrates) in a child process importing a copy of closedloop
    whose ``store/sql`` directory ``edit`` changed."""
    source = tmp_path / "edited-src"
    shutil.copytree(PACKAGE, source / "closedloop", ignore=shutil.ignore_patterns("__pycache__"))
    edit(source / "closedloop" / "store" / "sql")
    code = textwrap.dedent(
        f"""
        import closedloop.store as cs
        assert cs.__file__.startswith({str(source)!r}), cs.__file__
        try:
            cs.connect({url!r}).close()
        except cs.EditedMigrationError as error:
            print("refused:", error)
        else:
            print("migrated")
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(source)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def test_migrate_applies_each_migration_once_and_catches_up(unmigrated):
    store = unmigrated
    applied = store.migrate()
    assert applied == [m.name for m in migrations(SchemaSettings())]
    assert applied[0] == "otel_traces"
    assert store.migrate() == []
    store.execute("DROP VIEW closedloop.prompt_version_outcomes")
    store.execute(
        "ALTER TABLE closedloop.closedloop_migrations DELETE WHERE version >= 6 "
        "SETTINGS mutations_sync = 1"
    )
    later = [m.name for m in migrations(SchemaSettings()) if m.version >= 6]
    assert later[0] == "prompt_version_metrics"
    assert store.migrate() == later
    assert {"prompt_version_outcomes", "prompt_version_metrics"} <= view_names(store)
    assert store.query("SELECT count() AS n FROM closedloop.prompt_version_metrics") == [{"n": 0}]


def test_migrate_twice_changes_no_table_and_recreates_the_views(unmigrated):
    store = unmigrated
    store.migrate()
    before, recorded = tables(store), ledger_rows(store)
    assert [row["checksum"] for row in recorded] == list(shipped_checksums().values())
    # a view dropped by hand (or left as an older release defined it) comes back
    store.execute("DROP VIEW closedloop.call_signals")
    time.sleep(1.1)  # metadata times have whole seconds: a change would show
    assert store.migrate() == []
    assert tables(store) == before
    assert ledger_rows(store) == recorded
    assert view_names(store) == {view.name for view in views(SchemaSettings())}


def test_each_view_file_defines_the_view_it_is_named_for():
    found = views(SchemaSettings(database="db"))
    assert [view.order for view in found] == list(range(1, len(found) + 1))
    for view in found:
        [statement] = view.statements
        definition = re.search(r"^CREATE OR REPLACE VIEW (\S+) AS$", statement, re.MULTILINE)
        assert definition is not None and definition.group(1) == f"db.{view.name}", view.name


def test_landed_migrations_match_their_pinned_checksums():
    """A landed migration is never edited (stores that applied it would refuse to migrate):
    ``sql/checksums.txt`` pins each one, and a new migration lands with its line."""
    pinned = {}
    for line in (SQL / "checksums.txt").read_text().splitlines():
        digest, name = line.split("  ")
        pinned[name] = digest
    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in SQL.iterdir()
        if re.fullmatch(r"\d{3}_[a-z0-9_]+\.sql", path.name)
    }
    assert sorted(files) == sorted(pinned), "every migration file has one line in checksums.txt"
    edited = sorted(name for name, digest in files.items() if pinned[name] != digest)
    assert edited == [], f"landed migrations edited: {edited}; {FIX}"
    assert {m.file_name: m.checksum for m in migrations(SchemaSettings())} == files


def test_an_edited_landed_migration_is_refused_before_anything_changes(tmp_path):
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url) as store:
        store.execute("DROP VIEW closedloop.feedback")

    def edit(sql: Path) -> None:
        path = sql / "005_feedback_views.sql"
        path.write_text(path.read_text() + "\n-- a harmless-looking edit\n")

    result = run_edited(tmp_path, edit, url)
    assert "refused: migration 005_feedback_views.sql was edited" in result.stdout
    assert FIX in result.stdout.lower()
    with cs.connect(url, migrate=False) as store:
        assert "feedback" not in view_names(store)  # nothing was re-created
        # the same from this process: the ledger says the store applied another 003
        store.execute(
            "ALTER TABLE closedloop.closedloop_migrations UPDATE checksum = 'f00d' "
            "WHERE version = 3 SETTINGS mutations_sync = 1"
        )
        with pytest.raises(cs.EditedMigrationError) as refused:
            store.migrate()
    assert isinstance(refused.value, closedloop.ClosedloopError)
    assert "003_llm_calls.sql" in str(refused.value) and "f00d" in str(refused.value)


def test_a_changed_view_file_is_applied_on_the_next_migrate(tmp_path):
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url):
        pass

    def edit(sql: Path) -> None:
        path = sql / "views" / "06_prompt_version_outcomes.sql"
        text = path.read_text()
        path.write_text(
            text.replace(
                "    count() AS reported,", "    count() AS reported,\n    1 AS edited_marker,"
            )
        )

    assert run_edited(tmp_path, edit, url).stdout.strip() == "migrated"
    with cs.connect(url, migrate=False) as store:
        columns = store.query(
            "SELECT name FROM system.columns WHERE database = 'closedloop' "
            "AND table = 'prompt_version_outcomes' AND name = 'edited_marker'"
        )
        assert columns == [{"name": "edited_marker"}]
        assert store.migrate() == []  # the shipped file again: the edit is gone
        assert store.query(
            "SELECT count() AS n FROM system.columns WHERE database = 'closedloop' "
            "AND table = 'prompt_version_outcomes' AND name = 'edited_marker'"
        ) == [{"n": 0}]


@pytest.mark.parametrize("up_to", [10, 7])
def test_a_store_from_before_checksums_upgrades(unmigrated, up_to):
    """The checksums of migrations applied before the ledger had them are recorded as the
    files are at first sight; later migrations are applied and recorded as usual."""
    store = unmigrated
    migrate_before_checksums(store, up_to)
    assert store.migrate() == [m.name for m in migrations(SchemaSettings()) if m.version > up_to]
    assert ledger.applied(store) == {
        version: {digest} for version, digest in shipped_checksums().items()
    }
    # the rows of the original applies stay, with an empty checksum
    assert sum(row["checksum"] == "" for row in ledger_rows(store)) == up_to
    assert view_names(store) == {view.name for view in views(SchemaSettings())}
    before = ledger_rows(store)
    assert store.migrate() == []
    assert ledger_rows(store) == before


# the migration a newer release would ship next
NEWER = max(m.version for m in migrations(SchemaSettings())) + 1
NEWER_FILE = f"{NEWER:03d}_from_a_newer_release.sql"


def record_a_newer_migration(store) -> None:
    """What a newer release leaves: a migration this one does not ship, and its views."""
    store.execute(
        "INSERT INTO closedloop.closedloop_migrations (version, name, checksum) "
        "VALUES ({version:UInt32}, 'from_a_newer_release', 'beef')",
        {"version": NEWER},
    )
    store.execute("CREATE OR REPLACE VIEW closedloop.call_signals AS SELECT 1 AS newer_column")


def test_a_store_a_newer_release_migrated_is_refused_before_anything_changes(unmigrated):
    store = unmigrated
    store.migrate()
    record_a_newer_migration(store)
    before, recorded = tables(store), ledger_rows(store)
    with pytest.raises(cs.NewerSchemaError) as refused:
        store.migrate()
    assert isinstance(refused.value, cs.StoreError)
    message = str(refused.value)
    assert f"applied migration {NEWER_FILE}" in message
    assert "upgrade closedloop" in message.lower()
    # the newer release's view stands, and neither tables nor ledger changed
    assert store.query("SELECT * FROM closedloop.call_signals") == [{"newer_column": 1}]
    assert (tables(store), ledger_rows(store)) == (before, recorded)


def test_connect_refuses_a_store_a_newer_release_migrated(tmp_path):
    """``connect()`` migrates by default: an older replica restarting must not revert the
    views, and the refused store is closed (the chDB directory can be opened again)."""
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url) as store:
        record_a_newer_migration(store)
    with pytest.raises(cs.NewerSchemaError, match=re.escape(NEWER_FILE)):
        cs.connect(url)
    with cs.connect(url, migrate=False) as store:
        assert store.query("SELECT * FROM closedloop.call_signals") == [{"newer_column": 1}]
