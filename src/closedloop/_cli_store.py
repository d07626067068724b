"""How CLI commands reach the store: open it, or ask the ``closedloop serve`` that holds it.

chDB lets one process open a store directory, so while serve runs on it a command that
opened it would fail. ``store_access`` opens the store when it is free, and when it is
held goes through the serve that ``serve.json`` names; either way the command gets the
same operations with the same answers, and prints the same thing::

    with store_access(url) as store:
        result = store.sql("SELECT count() FROM closedloop.otel_traces")
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from closedloop._errors import ClosedloopError
from closedloop._serve_client import ServeClient
from closedloop._serve_discovery import find_serve
from closedloop.store import RescueResult, Store, StoreLockedError, connect, rescue
from closedloop.store._readonly_sql import SqlResult, readonly_sql


class StoreHeldError(ClosedloopError, RuntimeError):
    """Another process holds the chDB store, and no serve answers for it."""


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
def store_access(store_url: str) -> Iterator[StoreAccess]:
    """The store ``store_url`` names, opened (and closed after the block) when it is free;
    the serve that holds it otherwise. ``StoreHeldError`` when another process holds it
    and no serve answers there; the store's own errors as they are."""
    try:
        store = connect(store_url)
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
