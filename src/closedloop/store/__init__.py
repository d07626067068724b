"""Storage: the ClickHouse schema, span rows, chDB and server stores, a span exporter, and
the late-feedback rescue.

store = closedloop.store.connect("chdb:///var/lib/closedloop")
closedloop.instrument(exporter=closedloop.store.ClickHouseSpanExporter(store))
store.query("SELECT * FROM closedloop.prompt_version_metrics WHERE day = {d:Date}", {"d": day})
closedloop.store.rescue(store)  # on a schedule: traces dropped before their feedback came
"""

from closedloop.store._base import Store
from closedloop.store._connect import DEFAULT_URL, connect
from closedloop.store._errors import (
    EditedMigrationError,
    NewerSchemaError,
    StoreDataError,
    StoreError,
    StoreLockedError,
)
from closedloop.store._exporter import ClickHouseSpanExporter, ExporterStats
from closedloop.store._rescue import RescueResult, rescue
from closedloop.store._schema import SchemaSettings

__all__ = [
    "DEFAULT_URL",
    "ClickHouseSpanExporter",
    "EditedMigrationError",
    "ExporterStats",
    "NewerSchemaError",
    "RescueResult",
    "SchemaSettings",
    "Store",
    "StoreDataError",
    "StoreError",
    "StoreLockedError",
    "connect",
    "rescue",
]
