"""Storage: the ClickHouse schema, span rows, chDB and server stores, and a span exporter.

store = closedloop.store.connect("chdb:///var/lib/closedloop")
closedloop.instrument(exporter=closedloop.store.ClickHouseSpanExporter(store))
store.query("SELECT * FROM closedloop.prompt_version_metrics WHERE day = {d:Date}", {"d": day})
"""

from closedloop.store._base import Store
from closedloop.store._connect import DEFAULT_URL, connect
from closedloop.store._errors import (
    EditedMigrationError,
    StoreDataError,
    StoreError,
    StoreLockedError,
)
from closedloop.store._exporter import ClickHouseSpanExporter, ExporterStats
from closedloop.store._schema import SchemaSettings

__all__ = [
    "DEFAULT_URL",
    "ClickHouseSpanExporter",
    "EditedMigrationError",
    "ExporterStats",
    "SchemaSettings",
    "Store",
    "StoreDataError",
    "StoreError",
    "StoreLockedError",
    "connect",
]
