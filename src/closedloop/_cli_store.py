"""How CLI commands reach the store: open it, or ask the ``closedloop serve`` that holds it.

chDB lets one process open a store directory, so while serve runs on it a command that
opened it would fail. ``store_access`` opens the store when it is free, and when it is
held goes through the serve that ``serve.json`` names; either way the command gets the
same operations with the same answers, and prints the same thing::

    with store_access(url, migrate=False) as store:
        result = store.sql("SELECT count() FROM otel_traces")

A command never creates a chDB store: one that no closedloop process ever opened is an
error that says how to make one.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from closedloop._errors import ClosedloopError
from closedloop._serve_client import ServeClient
from closedloop._serve_discovery import find_serve
from closedloop.store import RescueResult, Store, StoreLockedError, connect, rescue
from closedloop.store._chdb_store import LOCK_FILE
from closedloop.store._connect import location
from closedloop.store._readonly_sql import SqlResult, readonly_sql


class StoreHeldError(ClosedloopError, RuntimeError):
    """Another process holds the chDB store, and no serve answers for it."""


class NoStoreError(ClosedloopError, RuntimeError):
    """The chDB store the command names does not exist; commands do not create one."""


class StoreAccess(Protocol):
    """What CLI commands do on the store."""

    def rescue(self, since: datetime.datetime | None) -> RescueResult:
        """Copy traces whose feedback arrived since ``since`` into ``otel_traces``."""
        ...

    def sql(self, query: str) -> SqlResult:
        """Run one read-only statement."""
        ...


class _Direct:
    """The store, opened by this process."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def rescue(self, since: datetime.datetime | None) -> RescueResult:
        return rescue(self.store, since)

    def sql(self, query: str) -> SqlResult:
        return readonly_sql(self.store, query)


@contextmanager
def store_access(store_url: str, *, migrate: bool) -> Iterator[StoreAccess]:
    """The store ``store_url`` names, opened (and closed after the block) when it is free,
    its schema brought up to date only when ``migrate`` (a command that writes); the serve
    that holds it otherwise. ``NoStoreError`` for a chDB store that does not exist,
    ``StoreHeldError`` when another process holds it and no serve answers there; the
    store's own errors as they are."""
    _require_existing(store_url)
    try:
        store = connect(store_url, migrate=migrate)
    except StoreLockedError as held:
        serve = find_serve(store_url)
        if serve is None:
            raise StoreHeldError(
                f"{held} No closedloop serve answers for this store, so this command cannot "
                "go through one either."
            ) from None
    else:
        with store:
            yield _Direct(store)
        return
    yield ServeClient(serve)


def _require_existing(store_url: str) -> None:
    """``NoStoreError`` unless the chDB store ``store_url`` names was opened by closedloop
    before (its lock file is there); a server's database is the server's to report."""
    store_location, _ = location(store_url)
    if not store_location.startswith("chdb://"):
        return
    directory = Path(store_location.removeprefix("chdb://"))
    if not (directory / LOCK_FILE).is_file():
        raise NoStoreError(
            f"no closedloop store at {directory}: start `closedloop serve --store "
            f"{store_url}` to create one, or pass --store with the URL of an existing store"
        )
