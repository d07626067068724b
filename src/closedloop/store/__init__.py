"""Storage: the ClickHouse schema, span rows, chDB and server stores, and a span exporter.

store = closedloop.store.connect("chdb:///var/lib/closedloop")
closedloop.instrument(exporter=closedloop.store.ClickHouseSpanExporter(store))
store.query("SELECT * FROM closedloop.prompt_version_metrics WHERE day = {d:Date}", {"d": day})
"""

from closedloop.store.base import Store, StoreDataError, StoreError
from closedloop.store.chdb_store import StoreLockedError
from closedloop.store.connect import DEFAULT_URL, connect
from closedloop.store.exporter import ClickHouseSpanExporter, ExporterStats
from closedloop.store.schema import SchemaSettings

__all__ = [
    "DEFAULT_URL",
    "ClickHouseSpanExporter",
    "ExporterStats",
    "SchemaSettings",
    "Store",
    "StoreDataError",
    "StoreError",
    "StoreLockedError",
    "connect",
]
