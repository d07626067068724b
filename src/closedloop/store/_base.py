"""One store interface over chDB (embedded) and ClickHouse server.

Both backends speak the same SQL and exchange rows as ``JSONEachRow`` (large results as
``JSONColumns``); queries bind ``{name:Type}`` parameters server-side, so user input is
never formatted into SQL.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry.sdk.trace import ReadableSpan

from closedloop._extras import require
from closedloop.store import _ledger as ledger
from closedloop.store._rows import encode_rows, span_rows
from closedloop.store._schema import SchemaSettings

TRACE_TABLES = ("otel_traces", "otel_traces_recent")
# An insert with a token is stored once per table, however often it is sent: the trace
# tables and every materialized view's target keep a deduplication window (migration 011),
# and the views' targets deduplicate too (on servers older than 24.7 only with the second
# setting; newer ones have it on by default).
DEDUPLICATION_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0}
"""Every insert: a batch may span any number of days (one partition each). The default
limit (100) refuses the whole block, which chDB's streaming insert does not even report."""
_TOKEN = re.compile(r"^[0-9a-f][0-9a-f:]{0,127}$")
OutputFormat = Literal["JSONEachRow", "JSONColumns"]
"""The ClickHouse output formats ``Store._fetch`` is asked for."""
QUERY_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    "output_format_json_quote_denormals": 0,
}


# ClickHouse error codes that mean "these rows cannot be parsed or stored as given"
# (CANNOT_PARSE_*, TYPE_MISMATCH, CANNOT_CONVERT_TYPE, INCORRECT_DATA, value out of range,
# ...): sending the same rows again cannot succeed.
DATA_ERROR_CODES = frozenset({6, 25, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349, 407, 691})
_ERROR_CODE = re.compile(r"\bCode: (\d+)\. DB::Exception")


def refused_rows(error: BaseException) -> bool:
    """Whether a backend's insert error is about the rows (see ``DATA_ERROR_CODES``)."""
    code = getattr(error, "code", None)
    if not isinstance(code, int):
        match = _ERROR_CODE.search(str(error))
        code = int(match.group(1)) if match else None
    return code in DATA_ERROR_CODES


class Store(ABC):
    """A ClickHouse-dialect store holding closedloop's schema."""

    def __init__(self, settings: SchemaSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @property
    def database(self) -> str:
        return self.settings.database

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, without credentials (``chdb:///abs/dir`` or
        ``clickhouse://host:port``): names the exporter's default spool."""

    @abstractmethod
    def _fetch(
        self, sql: str, parameters: Mapping[str, Any] | None, fmt: OutputFormat = "JSONEachRow"
    ) -> bytes:
        """Run a query; return its result as bytes in ClickHouse's output format ``fmt``."""

    @abstractmethod
    def _execute(self, sql: str, parameters: Mapping[str, Any] | None) -> None:
        """Run a statement that returns nothing (DDL, INSERT)."""

    @abstractmethod
    def _insert(self, table: str, body: bytes, token: str | None) -> None:
        """Insert JSONEachRow bytes into ``database.table``, deduplicated by ``token``."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (and, for chDB, the directory lock)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations in order and re-create every view; returns the names of
        the migrations applied (empty: up to date). Refuses, before changing anything, when a
        migration this store applied was edited since (``EditedMigrationError``) or a newer
        release migrated it (``NewerSchemaError``); see docs/storage.md."""
        return ledger.migrate(self)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts. Bind values with ``{name:Type}`` placeholders and ``parameters``."""
        body = self._fetch(sql, parameters)
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def query_columns(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        """The result column by column: each name with the list of its values (parameters
        as for ``query``). For results of many rows: each name comes once (``JSONColumns``)
        and orjson parses the body in one call, 0.3 s for 300,000 rows of 42 columns where
        ``query`` takes 6 s; a column then goes to numpy whole."""
        orjson = require("orjson", "store", "Reading store columns")
        body = self._fetch(sql, parameters, "JSONColumns")
        with _collection_paused():
            columns: dict[str, list[Any]] = orjson.loads(body)
        return columns

    def execute(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, INSERT ... SELECT)."""
        self._execute(sql, parameters)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``otel_traces``-shaped rows (see ``closedloop.store._rows``)."""
        if rows:
            self.insert_encoded(table, encode_rows(rows))

    def insert_encoded(self, table: str, body: bytes, *, token: str | None = None) -> None:
        """Insert rows already encoded as JSONEachRow into a trace table. With a ``token``
        (lowercase hex, colons), sending the same rows again with it stores nothing more,
        also after a restart (``insert_deduplication_token``; see docs/storage.md)."""
        if table not in TRACE_TABLES:
            raise ValueError(f"table must be one of {TRACE_TABLES}, got {table!r}.")
        if token is not None and not _TOKEN.match(token):
            raise ValueError(f"token={token!r}: use lowercase hex digits and colons.")
        self._insert(table, body, token)

    def insert_spans(self, spans: Sequence[ReadableSpan], table: str = "otel_traces") -> int:
        """Map finished OTel spans to rows and insert them; returns the count."""
        self.insert_rows(table, span_rows(spans))
        return len(spans)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a large result is parsed: its passes over the
    growing lists (a list per row of an array column) doubled the parse, and parsing makes
    no cycles for it to find. Left off if another thread paused it first."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
