"""The migrations ledger: which schema files a store has applied, and that they are intact.

``migrate()`` runs here: the ledger is made ready (``sql/ledger.sql``), every migration the
store applied is checked against the shipped file's SHA-256, the missing migrations are
applied in order and recorded with theirs, and then every view file is applied, so views
always match the shipped files. A landed migration that was edited is refused before
anything changes: the store's tables no longer follow from the files, and applying more on
top would only hide that. So is a store that a newer release migrated (its ledger holds a
migration this release does not ship): this release's view files would revert the newer
views, e.g. each time an old replica restarts in a rolling deploy. Migrations applied
before the ledger had checksums get the checksum of the file as it is at first sight
(nothing older is known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from closedloop.store._errors import EditedMigrationError, NewerSchemaError
from closedloop.store._schema import (
    Migration,
    migrations,
    query,
    statements,
    views,
)

if TYPE_CHECKING:
    from closedloop.store._base import Store


def prepare(store: Store) -> None:
    """Create the database and the ledger, or bring an older ledger up to date."""
    for statement in statements("ledger.sql", store.settings):
        store.execute(statement)
    database = {"database": store.settings.database}
    columns = {
        row["name"] for row in store.query(query("ledger_columns.sql", store.settings), database)
    }
    if "checksum" not in columns:
        for statement in statements("ledger_checksums.sql", store.settings):
            store.execute(statement)


def applied(store: Store) -> dict[int, set[str]]:
    """Version -> the checksums recorded for it (empty: applied before checksums)."""
    rows = store.query(query("ledger_applied.sql", store.settings))
    return {row["version"]: set(row["checksums"]) for row in rows}


def record(store: Store, migration: Migration) -> None:
    """Note in the ledger that ``migration``, as shipped, is applied."""
    parameters = {
        "version": migration.version,
        "name": migration.name,
        "checksum": migration.checksum,
    }
    store.execute(query("ledger_record.sql", store.settings), parameters)


def apply(store: Store, migration: Migration) -> None:
    """Run one migration's statements and record it."""
    for statement in migration.statements:
        store.execute(statement)
    record(store, migration)


def check(shipped: Sequence[Migration], done: Mapping[int, set[str]]) -> None:
    """Refuse if a migration the store applied differs from the shipped file."""
    for migration in shipped:
        edited = done.get(migration.version, set()) - {migration.checksum}
        if edited:
            raise EditedMigrationError(
                f"migration {migration.file_name} was edited after this store applied it "
                f"(the store recorded SHA-256 {min(edited)}, the shipped file has "
                f"{migration.checksum}). A landed migration never changes: restore it from "
                "git; schema changes go in a new numbered migration."
            )


def refuse_newer(store: Store, shipped: Sequence[Migration], done: Mapping[int, set[str]]) -> None:
    """Refuse if the store applied a migration this release does not ship."""
    if not set(done) - {migration.version for migration in shipped}:
        return
    [newest] = store.query(query("ledger_newest.sql", store.settings))
    raise NewerSchemaError(
        "this store was migrated by a newer closedloop release: it applied migration "
        f"{newest['version']:03d}_{newest['name']}.sql, which this release (migrations up to "
        f"{shipped[-1].file_name}) does not ship, and migrating would revert the newer "
        "release's views. Upgrade closedloop (pip install -U 'closedloop[store]') in every "
        "process that connects to this store."
    )


def create_views(store: Store) -> None:
    """(Re)create every view from its file, in order."""
    for view in views(store.settings):
        for statement in view.statements:
            store.execute(statement)


def migrate(store: Store) -> list[str]:
    """Bring ``store`` up to date; the names of the migrations applied (views, re-created
    every time, are not listed)."""
    prepare(store)
    shipped = migrations(store.settings)
    done = applied(store)
    refuse_newer(store, shipped, done)
    check(shipped, done)
    names = []
    for migration in shipped:
        if migration.version not in done:
            apply(store, migration)
            names.append(migration.name)
        elif not done[migration.version]:
            record(store, migration)
    create_views(store)
    return names
