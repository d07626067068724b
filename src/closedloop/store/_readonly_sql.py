"""Read-only SQL on a store: what ``closedloop sql`` and serve's ``POST /api/sql`` run.

The engine enforces it, not a reading of the text: the statement runs with ClickHouse's
``readonly = 1`` — on chDB in a session of its own on the store's directory (chDB takes no
per-query settings, and a ``SET`` on the store's shared session would bind serve's writes
too), on a server as a setting of the one query. ``readonly = 1`` refuses writes, DDL,
table functions that reach files or the network, and any change of a setting in the
query (``SETTINGS``, so the limits below hold); a ``SET`` statement passes, harmless in a
session that lasts one statement. Some statements read beyond the store yet pass
``readonly`` (``INTO OUTFILE``, which clickhouse-local writes itself, ``KILL``, ``BACKUP``,
``UNDROP``, the scalar ``file()``, which reads any file the process can): they are refused
by kind, on the statement as the engine's parser normalises it, which also refuses more
than one statement. So is a ``FORMAT`` clause, which changes the answer read here. The text
itself is what runs: the normal form leaves out an ``INSERT``'s inline data, and only the
text makes the engine refuse it as the write it is.

Every statement runs under limits (``SqlLimits``) so that a query cannot hold serve's
memory or a worker for long: time, memory, and the size of the answer, which is held
whole in memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from closedloop._extras import require
from closedloop.store._base import Store
from closedloop.store._chdb_store import ChDBStore
from closedloop.store._errors import StoreError
from closedloop.store._schema import query
from closedloop.store._server_store import ClickHouseServerStore

_ENGINE_MESSAGE: Final = re.compile(r"Code: (\d+)\. DB::Exception: ")
_OUTER_SUFFIX: Final = re.compile(r" \(version [\d.]+\)\. \(\w+\)$")
_CHECK_SCOPE: Final = re.compile(r":? In scope SELECT formatQuerySingleLine\(.*\) AS statement\.")
_OUTSIDE_READING: Final = re.compile(r"^(?:KILL|BACKUP|UNDROP)\b|\bINTO OUTFILE\b")
_READS_FILES: Final = re.compile(r"\bfile\s*\(", re.IGNORECASE)
_FORMAT_CLAUSE: Final = re.compile(r"\sFORMAT\s+(?:`(?:[^`\\]|\\.)*`|\w+)(?:\s+SETTINGS\s.*)?$")
_INSERT: Final = re.compile(r"^INSERT\b")
"""An ``INSERT``'s normal form names its data's format (``VALUES`` is ``FORMAT Values``); the
engine refuses it as the write it is."""
_READ_ONLY: Final = {"readonly": 1}
_OUTPUT: Final = {
    "output_format_json_quote_64bit_integers": 0,  # Python's int holds them exactly
    "output_format_json_quote_decimals": 1,  # a float would not
    "output_format_json_quote_denormals": 1,  # inf and nan as text, not null
}
_MIB: Final = 1024 * 1024
_TIMEOUT_EXCEEDED: Final = 159
_MEMORY_LIMIT_EXCEEDED: Final = 241
_TOO_MANY_ROWS_OR_BYTES: Final = 396


@dataclass(frozen=True)
class SqlLimits:
    """What one statement may take; over a limit, the engine stops it with an error."""

    max_execution_time_s: int = 60
    max_memory_bytes: int = 1024 * _MIB
    max_result_rows: int = 100_000
    max_result_bytes: int = 16 * _MIB
    """Of the answer as the engine holds it; as Python objects and JSON it is several times
    this, in serve and in the CLI."""

    def settings(self) -> dict[str, int | str]:
        """The engine's settings for these limits."""
        return {
            "max_execution_time": self.max_execution_time_s,
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
        }

    def hint(self, code: int) -> str:
        """What to do about the limit the engine's error ``code`` says was reached."""
        if code == _TIMEOUT_EXCEEDED:
            return (
                f"statements here stop after {self.max_execution_time_s} s "
                "(max_execution_time): narrow the time range or the tables read"
            )
        if code == _MEMORY_LIMIT_EXCEEDED:
            return (
                f"statements here may use {self.max_memory_bytes // _MIB} MiB "
                "(max_memory_usage): aggregate less at once, or narrow the time range"
            )
        if code == _TOO_MANY_ROWS_OR_BYTES:
            return (
                f"answers here are limited to {self.max_result_rows:,} rows and "
                f"{self.max_result_bytes // _MIB} MiB (max_result_rows, max_result_bytes): "
                "add LIMIT (and OFFSET to page), or aggregate"
            )
        return ""


DEFAULT_LIMITS: Final = SqlLimits()


class SqlRefused(StoreError):
    """The engine refused the statement (a syntax error, an unknown table, a write under
    ``readonly``, a limit), or it is of a kind only reading is allowed past; the message
    says which."""


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


def readonly_sql(store: Store, text: str, limits: SqlLimits = DEFAULT_LIMITS) -> SqlResult:
    """Run one statement under ``readonly = 1`` and ``limits``, with the store's database
    as the default one, and return its columns and rows, the whole answer in memory.
    ``SqlRefused`` carries the engine's message (or names the kind of statement refused);
    a store that cannot be reached is a plain ``StoreError``."""
    _refuse_by_kind(_normalised(store, text))
    settings = {**_READ_ONLY, **limits.settings(), **_OUTPUT}
    if isinstance(store, ChDBStore):
        return _result(_chdb_readonly(store, text, settings, limits))
    if isinstance(store, ClickHouseServerStore):
        return _result(_server_readonly(store, text, settings, limits))
    raise TypeError(f"read-only SQL runs on closedloop's own stores, not {type(store).__name__}")


def _normalised(store: Store, text: str) -> str:
    """The one statement ``text`` holds, as the engine's parser writes it out."""
    try:
        [row] = store.query(query("readonly_statement.sql", store.settings), {"statement": text})
    except StoreError as error:
        raise _refusal(error, DEFAULT_LIMITS, scope=_CHECK_SCOPE) from None
    statement: str = row["statement"]
    return statement


def _refuse_by_kind(statement: str) -> None:
    """Refuse what passes ``readonly`` yet reaches beyond the store, or changes the answer's
    format; matched on the normal form, so a string literal that looks alike counts too."""
    if _OUTSIDE_READING.search(statement):
        raise SqlRefused(
            "INTO OUTFILE, KILL, BACKUP and UNDROP act beyond reading the store, and only "
            "reading is allowed here; a string that contains INTO OUTFILE counts too"
        )
    if _READS_FILES.search(statement):
        raise SqlRefused(
            "file() reads files on the machine, and only the store may be read here; "
            "a string that contains file( counts too"
        )
    if _FORMAT_CLAUSE.search(statement) and not _INSERT.match(statement):
        raise SqlRefused(
            "a FORMAT clause changes the answer closedloop reads; leave it out and choose "
            "the output with --format (table, csv, json)"
        )


def _chdb_readonly(
    store: ChDBStore, statement: str, settings: dict[str, int | str], limits: SqlLimits
) -> bytes:
    """A session of its own on the store's directory (which this process holds), opened
    with ``settings`` and closed after the statement: settings, ``USE`` and query
    parameters never outlive it."""
    session_module = require("chdb.session", "store", "The embedded chDB store")
    options = urlencode({**settings, "database": store.database})
    try:
        session = session_module.Session(f"{store.path}?{options}")
        try:
            body: bytes = session.query(statement, "JSONCompact").bytes()
        finally:
            session.close()
    except Exception as error:
        raise _refusal(error, limits) from None
    return body


def _server_readonly(
    store: ClickHouseServerStore, statement: str, settings: dict[str, int | str], limits: SqlLimits
) -> bytes:
    """The statement with ``settings`` as settings of its own request, and the store's
    database as the request's default (``database`` is a parameter of the HTTP interface,
    not a setting, so ``readonly`` lets it through)."""
    try:
        body = store._client.raw_query(
            statement, settings={**settings, "database": store.database}, fmt="JSONCompact"
        )
    except Exception as error:
        raise _refusal(error, limits) from None
    return bytes(body)


def _refusal(
    error: Exception, limits: SqlLimits, scope: re.Pattern[str] | None = None
) -> StoreError:
    """The engine's message (``Code: N. DB::Exception: ...``, the innermost when one wraps
    another) as a ``SqlRefused``, with what to do when a limit was reached; an error
    without one (the store is closed or unreachable) as the ``StoreError`` it is."""
    text = str(error)
    found = list(_ENGINE_MESSAGE.finditer(text))
    if not found:
        return error if isinstance(error, StoreError) else StoreError(text)
    message = text[found[-1].start() :].splitlines()[0].rstrip()
    if len(found) > 1:  # the wrapper's version and code name follow the innermost message
        message = _OUTER_SUFFIX.sub("", message)
    if scope is not None:
        message = scope.sub("", message)
    hint = limits.hint(int(found[-1].group(1)))
    return SqlRefused(f"{message}; {hint}" if hint else message)


def _result(body: bytes) -> SqlResult:
    """The ``JSONCompact`` answer; empty for a statement that returns nothing (``SET``)."""
    if not body.strip():
        return SqlResult([], [])
    try:
        document = json.loads(body)
        return SqlResult.from_json({"columns": document["meta"], "rows": document["data"]})
    except (ValueError, KeyError, TypeError):
        raise SqlRefused(
            "the answer is not the JSONCompact closedloop asked for; leave out any FORMAT "
            "clause and choose the output with --format (table, csv, json)"
        ) from None
