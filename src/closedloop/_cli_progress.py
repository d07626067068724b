"""Progress for the CLI's long work, shown only where the work has steps to count.

``migrate`` on a big store spends minutes in a migration that copies a table, so it shows a
bar over the migrations still to apply (and the views, re-created last). A rescue is one
statement: the engine reports no steps, so it gets a spinner with the elapsed time, not a
bar that would pretend to know. Both go to stderr and only to a terminal, so the output a
script reads stays what it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from closedloop._extras import extra_needed

with extra_needed("cli", "The closedloop command"):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

if TYPE_CHECKING:
    from closedloop.store import Store

_STDERR = Console(stderr=True)


def migrate(store: Store) -> list[str]:
    """``Store.migrate()``, step by step with a bar: the ledger's own steps in its order
    (``closedloop.store._ledger.migrate``), its checks before anything changes."""
    from closedloop.store import _ledger as ledger
    from closedloop.store._schema import migrations

    ledger.prepare(store)
    shipped = migrations(store.settings)
    done = ledger.applied(store)
    ledger.refuse_newer(store, shipped, done)
    ledger.check(shipped, done)
    pending = [migration for migration in shipped if migration.version not in done]
    names = []
    with _bar() as progress:
        task = progress.add_task("migrating", total=len(pending) + 1)
        for migration in shipped:
            if migration.version not in done:
                progress.update(task, description=migration.name)
                ledger.apply(store, migration)
                names.append(migration.name)
                progress.advance(task)
            elif not done[migration.version]:
                ledger.record(store, migration)
        progress.update(task, description="views")
        ledger.create_views(store)
        progress.advance(task)
    return names


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner with the elapsed time, for work of one step."""
    with Progress(
        SpinnerColumn(),
        TextColumn(what),
        TimeElapsedColumn(),
        console=_STDERR,
        transient=True,
        disable=not _STDERR.is_terminal,
    ):
        yield


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_STDERR,
        transient=True,
        disable=not _STDERR.is_terminal,
    )
