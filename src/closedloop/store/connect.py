"""``closedloop.store.connect(url)``: one entry point for both deployments."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from closedloop.store.base import Store
from closedloop.store.schema import SchemaSettings

DEFAULT_URL = "chdb://.closedloop/store"
_SCHEMA_OPTIONS = ("database", "traces_ttl_days", "recent_ttl_days")
_SERVER_PORTS = {"clickhouse": 8123, "http": 8123, "clickhouses": 8443, "https": 8443}


def _options(query: str, url: str) -> dict[str, str]:
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - set(_SCHEMA_OPTIONS)
    if unknown:
        raise ValueError(
            f"store url {url!r} has unknown options {sorted(unknown)}; "
            f"supported: {', '.join(_SCHEMA_OPTIONS)}."
        )
    return options


def _schema(options: dict[str, str], database: str | None, url: str) -> SchemaSettings:
    values: dict[str, object] = {}
    if database:
        values["database"] = database
    for key, raw in options.items():
        if key == "database":
            values[key] = raw
            continue
        try:
            values[key] = int(raw)
        except ValueError:
            raise ValueError(f"store url {url!r}: {key}={raw!r} must be a whole number") from None
    return SchemaSettings(**values)  # type: ignore[arg-type]


def connect(url: str = DEFAULT_URL, *, migrate: bool = True) -> Store:
    """Open a store and (by default) bring its schema up to date.

    ``chdb:///abs/dir`` or ``chdb://relative/dir`` — embedded chDB (default
    ``chdb://.closedloop/store``); ``clickhouse://user:pass@host:8123/db``,
    ``http(s)://...`` or ``clickhouses://...`` — a ClickHouse server. Query options:
    ``database``, ``traces_ttl_days``, ``recent_ttl_days``.
    """
    parts = urlsplit(url)
    options = _options(parts.query, url)
    if parts.scheme == "chdb":
        from closedloop.store.chdb_store import ChDBStore

        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError(f"store url {url!r} names no directory; use chdb:///path/to/dir.")
        store: Store = ChDBStore(path, _schema(options, None, url))
    elif parts.scheme in _SERVER_PORTS:
        from closedloop.store.server_store import ClickHouseServerStore

        database = parts.path.strip("/") or None
        store = ClickHouseServerStore(
            _schema(options, database, url),
            host=parts.hostname or "localhost",
            port=parts.port or _SERVER_PORTS[parts.scheme],
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=parts.scheme in ("https", "clickhouses"),
        )
    else:
        raise ValueError(
            f"store url {url!r} has an unknown scheme {parts.scheme!r}; use chdb:///path, "
            "clickhouse://user:pass@host:8123/db, or https://user:pass@host:8443/db."
        )
    if migrate:
        try:
            store.migrate()
        except Exception:
            store.close()
            raise
    return store
