"""Checks of ``ClickHouseSpanExporter``'s arguments, made at the call.

A mistake here (a misspelt table, one string where a tuple belongs, a bad URL) would
otherwise only show later, as batches retried and spooled for ever. Each error names the
argument, the value given and the fix; the generic checks are ``closedloop._validation``'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from closedloop._validation import require_positive_int, require_positive_number, require_type
from closedloop.store._base import TRACE_TABLES, Store
from closedloop.store._connect import location


def check_target(store_or_url: Any) -> tuple[str, str]:
    """``(location, database)`` of the store to write to; see ``Store.location``."""
    if isinstance(store_or_url, Store):
        return store_or_url.location, store_or_url.database
    if isinstance(store_or_url, str):
        return location(store_or_url)
    raise TypeError(
        f"store_or_url={store_or_url!r}: expected a closedloop Store "
        "(closedloop.store.connect(...)) or a store URL such as 'chdb://.closedloop/store'."
    )


def check_tables(tables: Any) -> tuple[str, ...]:
    choices = " or ".join(repr(table) for table in TRACE_TABLES)
    if isinstance(tables, str) or not isinstance(tables, Sequence):
        raise TypeError(
            f"tables={tables!r}: expected a sequence of trace table names, "
            f"e.g. ({TRACE_TABLES[0]!r},)."
        )
    if not tables:
        raise ValueError(f"tables={tables!r}: name at least one trace table; use {choices}.")
    for table in tables:
        if table not in TRACE_TABLES:
            raise ValueError(f"tables={tables!r}: unknown table {table!r}; use {choices}.")
    if len(set(tables)) != len(tables):
        raise ValueError(f"tables={tables!r}: a table is named twice; name each table once.")
    return tuple(tables)


def check_count(name: str, value: Any, example: int) -> int:
    """A whole number >= 1."""
    require_positive_int(name, value, f"pass a whole number such as {example}.")
    return int(value)


def check_seconds(name: str, value: Any, example: float, at_least: float = 0.0) -> float:
    """A finite number of seconds > 0 (and >= ``at_least``, another argument's value)."""
    fix = f"pass a number of seconds such as {example}."
    require_positive_number(name, value, fix)
    if value < at_least:
        raise ValueError(f"{name}={value!r} must be at least {at_least}; {fix}")
    return float(value)


def check_directory(name: str, value: Any) -> str | os.PathLike[str] | None:
    require_type(name, value, (str, os.PathLike), "pass a directory path.", optional=True)
    directory: str | os.PathLike[str] | None = value
    return directory


def check_flag(name: str, value: Any) -> bool:
    require_type(name, value, bool, "pass True or False.")
    return bool(value)
