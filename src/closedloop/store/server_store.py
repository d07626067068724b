"""ClickHouse server store over HTTP(S), via ``clickhouse-connect``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closedloop.store.base import QUERY_SETTINGS, Store, StoreError
from closedloop.store.schema import SchemaSettings


class ClickHouseServerStore(Store):
    """A ClickHouse server; ``connect_options`` go to ``clickhouse_connect.get_client``."""

    def __init__(self, settings: SchemaSettings, **connect_options: Any) -> None:
        super().__init__(settings)
        import clickhouse_connect

        self._options = connect_options
        try:
            self._client = clickhouse_connect.get_client(
                **connect_options, settings=QUERY_SETTINGS, autogenerate_session_id=False
            )
        except Exception as error:
            where = f"{connect_options.get('host')}:{connect_options.get('port')}"
            raise StoreError(f"cannot reach ClickHouse at {where}: {error}") from error

    def _fetch(self, sql: str, parameters: Mapping[str, Any] | None) -> bytes:
        try:
            body = self._client.raw_query(sql, parameters=dict(parameters or {}), fmt="JSONEachRow")
        except Exception as error:
            raise StoreError(f"ClickHouse rejected the query: {error}") from error
        return bytes(body)

    def _execute(self, sql: str, parameters: Mapping[str, Any] | None) -> None:
        try:
            self._client.command(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise StoreError(f"ClickHouse rejected the statement: {error}") from error

    def _insert(self, table: str, body: bytes) -> None:
        try:
            self._client.raw_insert(
                f"{self.database}.{table}", insert_block=body, fmt="JSONEachRow"
            )
        except Exception as error:
            raise StoreError(f"ClickHouse rejected the insert into {table}: {error}") from error

    def close(self) -> None:
        self._client.close()
