"""The store's errors, apart from the code that raises them so every store module (and the
migrations ledger, which the base store uses) can import them without a cycle."""

from __future__ import annotations

from closedloop._errors import ClosedloopError


class StoreError(ClosedloopError, RuntimeError):
    """The store could not be reached or refused an operation."""


class StoreDataError(StoreError):
    """The store refused the rows themselves (a parse or type error): retrying cannot help,
    unlike an unreachable or overloaded store."""


class StoreLockedError(StoreError):
    """Another process holds the chDB directory."""


class EditedMigrationError(StoreError):
    """A migration this store applied was changed since: the store's schema no longer
    follows from the shipped files, so ``migrate()`` refuses to go on."""


class NewerSchemaError(StoreError):
    """A newer closedloop release migrated this store: migrating it with this one would
    re-create the newer release's views from older files, so ``migrate()`` refuses."""
