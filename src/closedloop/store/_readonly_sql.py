"""Read-only SQL on a store: what ``closedloop sql`` and serve's ``POST /api/sql`` run.

The engine enforces it, not a reading of the text: the statement runs with ClickHouse's
``readonly = 1`` — on chDB in a session of its own on the store's directory (chDB takes no
per-query settings, and a ``SET`` on the store's shared session would bind serve's writes
too), on a server as a setting of the one query. ``readonly = 1`` refuses writes, DDL,
``SET``, table functions that reach files or the network, and any change of ``readonly``
itself; ``2`` would let ``SET`` through. A few statements read nothing yet pass
``readonly`` (``INTO OUTFILE``, which clickhouse-local writes itself, ``KILL``, ``BACKUP``,
``UNDROP``): they are refused by kind, on the statement as the engine's parser normalises
it, which also refuses more than one statement. The text itself is what runs: the normal
form leaves out an ``INSERT``'s inline data, and only the text makes the engine refuse it
as the write it is (``readonly`` stops an ``INSERT`` before anything after its data runs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from closedloop._extras import require
from closedloop.store._base import QUERY_SETTINGS, Store
from closedloop.store._chdb_store import ChDBStore
from closedloop.store._errors import StoreError
from closedloop.store._schema import query
from closedloop.store._server_store import ClickHouseServerStore

_ENGINE_MESSAGE: Final = re.compile(r"Code: \d+\. DB::Exception: .*")
_CHECK_SCOPE: Final = re.compile(r":? In scope SELECT formatQuerySingleLine\(.*\) AS statement\.")
_OUTSIDE_READING: Final = re.compile(r"^(?:KILL|BACKUP|UNDROP)\b|\bINTO OUTFILE\b")
_READ_ONLY: Final = {"readonly": 1}


class SqlRefused(StoreError):
    """The engine refused the statement (a syntax error, an unknown table, a write under
    ``readonly``), or it is of a kind only reading is allowed past; the message says which."""


@dataclass(frozen=True)
class SqlResult:
    """A statement's answer: its columns with their ClickHouse types, and its rows."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]]

    def as_json(self) -> dict[str, Any]:
        """The shape ``POST /api/sql`` answers with."""
        return {
            "columns": [{"name": name, "type": kind} for name, kind in self.columns],
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Any) -> SqlResult:
        """The result ``as_json`` gave; ValueError for anything else."""
        try:
            columns = [(str(column["name"]), str(column["type"])) for column in data["columns"]]
            rows = data["rows"]
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a SQL result: {error}") from None
        if not isinstance(rows, list) or not all(
            isinstance(row, list) and len(row) == len(columns) for row in rows
        ):
            raise ValueError("not a SQL result: rows must be lists, one value per column")
        return cls(columns, rows)


def readonly_sql(store: Store, text: str) -> SqlResult:
    """Run one statement under ``readonly = 1`` and return its columns and rows, the whole
    answer in memory. ``SqlRefused`` carries the engine's message (or names the kind of
    statement refused); a store that cannot be reached is a plain ``StoreError``."""
    if _OUTSIDE_READING.search(_normalised(store, text)):
        raise SqlRefused(
            "INTO OUTFILE, KILL, BACKUP and UNDROP act beyond reading the store, and only "
            "reading is allowed here; a string that contains INTO OUTFILE counts too"
        )
    if isinstance(store, ChDBStore):
        return _result(_chdb_readonly(store, text))
    if isinstance(store, ClickHouseServerStore):
        return _result(_server_readonly(store, text))
    raise TypeError(f"read-only SQL runs on closedloop's own stores, not {type(store).__name__}")


def _normalised(store: Store, text: str) -> str:
    """The one statement ``text`` holds, as the engine's parser writes it out."""
    try:
        [row] = store.query(query("readonly_statement.sql", store.settings), {"statement": text})
    except StoreError as error:
        raise _refusal(error, scope=_CHECK_SCOPE) from None
    statement: str = row["statement"]
    return statement


def _chdb_readonly(store: ChDBStore, statement: str) -> bytes:
    """A session of its own on the store's directory (which this process holds), opened
    with ``readonly = 1`` and closed after the statement: settings, ``USE`` and query
    parameters never outlive it."""
    session_module = require("chdb.session", "store", "The embedded chDB store")
    options = urlencode({**_READ_ONLY, **QUERY_SETTINGS})
    try:
        session = session_module.Session(f"{store.path}?{options}")
        try:
            body: bytes = session.query(statement, "JSONCompact").bytes()
        finally:
            session.close()
    except Exception as error:
        raise _refusal(error) from None
    return body


def _server_readonly(store: ClickHouseServerStore, statement: str) -> bytes:
    """The statement with ``readonly = 1`` as a setting of its own request."""
    try:
        return bytes(store._client.raw_query(statement, settings=_READ_ONLY, fmt="JSONCompact"))
    except Exception as error:
        raise _refusal(error) from None


def _refusal(error: Exception, scope: re.Pattern[str] | None = None) -> StoreError:
    """The engine's message (``Code: N. DB::Exception: ...``) as a ``SqlRefused``; an
    error without one (the store is closed or unreachable) as the ``StoreError`` it is."""
    found = _ENGINE_MESSAGE.search(str(error))
    if found is None:
        return error if isinstance(error, StoreError) else StoreError(str(error))
    message = found.group(0)
    return SqlRefused(scope.sub("", message) if scope else message)


def _result(body: bytes) -> SqlResult:
    """The ``JSONCompact`` answer; empty for a statement that returns nothing (``USE``)."""
    if not body.strip():
        return SqlResult([], [])
    try:
        document = json.loads(body)
        return SqlResult.from_json({"columns": document["meta"], "rows": document["data"]})
    except (ValueError, KeyError, TypeError):
        raise SqlRefused(
            "the statement's FORMAT clause changes the answer closedloop reads; leave it "
            "out and choose the output with --format (table, csv, json)"
        ) from None
