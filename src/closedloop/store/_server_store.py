"""ClickHouse server store over HTTP(S), via ``clickhouse-connect``.

Timeouts are short by default (clickhouse-connect's read timeout is 300 s): a host that
accepts and never answers must fail an insert soon, so the exporter retries and spools
instead of waiting minutes. Long queries still work: clickhouse-connect asks the server
for progress headers more often than the read timeout, which keep the connection alive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from closedloop._extras import require
from closedloop.store._base import (
    DEDUPLICATION_SETTINGS,
    INSERT_SETTINGS,
    QUERY_SETTINGS,
    OutputFormat,
    Store,
    refused_rows,
)
from closedloop.store._chdb_store import chdb_location
from closedloop.store._errors import StoreDataError, StoreError
from closedloop.store._schema import SchemaSettings

CONNECT_TIMEOUT_S = 5.0
SEND_RECEIVE_TIMEOUT_S = 30.0


def server_location(host: str, port: int) -> str:
    return f"clickhouse://{host}:{port}"


def _location(options: Mapping[str, Any]) -> str:
    dsn = options.get("dsn")
    if dsn is None:
        return server_location(options.get("host", "localhost"), options.get("port", 8123))
    parts = urlsplit(str(dsn))
    if parts.scheme == "chdb":
        return chdb_location(unquote(parts.netloc + parts.path))
    return server_location(parts.hostname or "localhost", parts.port or 8123)


class ClickHouseServerStore(Store):
    """A ClickHouse server; ``connect_options`` go to ``clickhouse_connect.get_client``
    (``connect_timeout`` defaults to 5 s and ``send_receive_timeout`` to 30 s)."""

    def __init__(self, settings: SchemaSettings, **connect_options: Any) -> None:
        super().__init__(settings)
        clickhouse_connect = require("clickhouse_connect", "store", "A ClickHouse server store")

        connect_options.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        connect_options.setdefault("send_receive_timeout", SEND_RECEIVE_TIMEOUT_S)
        self._location = _location(connect_options)
        try:
            self._client = clickhouse_connect.get_client(
                **connect_options, settings=QUERY_SETTINGS, autogenerate_session_id=False
            )
        except Exception as error:
            raise StoreError(f"cannot reach ClickHouse at {self._location}: {error}") from error

    @property
    def location(self) -> str:
        return self._location

    def _fetch(
        self, sql: str, parameters: Mapping[str, Any] | None, fmt: OutputFormat = "JSONEachRow"
    ) -> bytes:
        try:
            body = self._client.raw_query(sql, parameters=dict(parameters or {}), fmt=fmt)
        except Exception as error:
            raise StoreError(f"ClickHouse rejected the query: {error}") from error
        return bytes(body)

    def _execute(self, sql: str, parameters: Mapping[str, Any] | None) -> None:
        try:
            self._client.command(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise StoreError(f"ClickHouse rejected the statement: {error}") from error

    def _insert(self, table: str, body: bytes, token: str | None) -> None:
        settings: dict[str, object] = dict(INSERT_SETTINGS)
        if token is not None:
            settings |= {**DEDUPLICATION_SETTINGS, "insert_deduplication_token": token}
        try:
            self._client.raw_insert(
                f"{self.database}.{table}", insert_block=body, settings=settings, fmt="JSONEachRow"
            )
        except Exception as error:
            kind = StoreDataError if refused_rows(error) else StoreError
            raise kind(f"ClickHouse rejected the insert into {table}: {error}") from error

    def close(self) -> None:
        self._client.close()
