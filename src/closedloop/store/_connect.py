"""``closedloop.store.connect(url)``: one entry point for both deployments."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from closedloop.store._base import Store
from closedloop.store._schema import SchemaSettings

# Relative: the embedded store lives under the directory the process starts in, so two
# apps started from different directories have two stores. Pass an absolute
# ``chdb:///path`` to pin it.
DEFAULT_URL = "chdb://.closedloop/store"
_SCHEMA_OPTIONS = ("database", "traces_ttl_days", "recent_ttl_days")
_TIMEOUT_OPTIONS = ("connect_timeout", "send_receive_timeout")
_SERVER_PORTS = {"clickhouse": 8123, "http": 8123, "clickhouses": 8443, "https": 8443}


def _options(query: str, url: str) -> dict[str, str]:
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - set(_SCHEMA_OPTIONS) - set(_TIMEOUT_OPTIONS)
    if unknown:
        raise ValueError(
            f"store url {url!r} has unknown options {sorted(unknown)}; "
            f"supported: {', '.join(_SCHEMA_OPTIONS + _TIMEOUT_OPTIONS)}."
        )
    return options


def _timeouts(options: dict[str, str], url: str) -> dict[str, float]:
    """``connect_timeout`` / ``send_receive_timeout`` in seconds (server URLs only)."""
    timeouts = {}
    for key in _TIMEOUT_OPTIONS:
        if key not in options:
            continue
        raw = options.pop(key)
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(
                f"store url {url!r}: {key}={raw!r} must be a positive number of seconds"
            )
        timeouts[key] = seconds
    return timeouts


def _days(options: dict[str, str], key: str, default: int, url: str) -> int:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise ValueError(
            f"store url {url!r}: {key}={options[key]!r} must be a whole number"
        ) from None


def _schema(options: dict[str, str], database: str | None, url: str) -> SchemaSettings:
    """Settings from the URL: the ``database`` option wins over the URL's path."""
    defaults = SchemaSettings()
    return SchemaSettings(
        database=options.get("database", database or defaults.database),
        traces_ttl_days=_days(options, "traces_ttl_days", defaults.traces_ttl_days, url),
        recent_ttl_days=_days(options, "recent_ttl_days", defaults.recent_ttl_days, url),
    )


@dataclass(frozen=True)
class _Target:
    """What a store URL names: a chDB directory or a server's connection options."""

    settings: SchemaSettings
    chdb_path: str | None = None
    server: dict[str, Any] = field(default_factory=dict)


def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    options = _options(parts.query, url)
    timeouts = _timeouts(options, url)
    if parts.scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError(f"store url {url!r} names no directory; use chdb:///path/to/dir.")
        if timeouts:
            raise ValueError(
                f"store url {url!r}: {', '.join(timeouts)} only apply to a ClickHouse server; "
                "remove them from a chdb:// URL."
            )
        return _Target(_schema(options, None, url), chdb_path=path)
    if parts.scheme in _SERVER_PORTS:
        server = {
            "host": parts.hostname or "localhost",
            "port": parts.port or _SERVER_PORTS[parts.scheme],
            "username": unquote(parts.username or "default"),
            "password": unquote(parts.password or ""),
            "secure": parts.scheme in ("https", "clickhouses"),
            **timeouts,
        }
        return _Target(_schema(options, parts.path.strip("/") or None, url), server=server)
    raise ValueError(
        f"store url {url!r} has an unknown scheme {parts.scheme!r}; use chdb:///path, "
        "clickhouse://user:pass@host:8123/db, or https://user:pass@host:8443/db."
    )


def connect(url: str = DEFAULT_URL, *, migrate: bool = True) -> Store:
    """Open a store and (by default) bring its schema up to date.

    ``chdb:///abs/dir`` or ``chdb://relative/dir`` — embedded chDB (default
    ``chdb://.closedloop/store``); ``clickhouse://user:pass@host:8123/db``,
    ``http(s)://...`` or ``clickhouses://...`` — a ClickHouse server. Query options:
    ``database``, ``traces_ttl_days``, ``recent_ttl_days``; for a server also
    ``connect_timeout`` (default 5) and ``send_receive_timeout`` (default 30), in seconds.
    """
    target = _parse(url)
    if target.chdb_path is not None:
        from closedloop.store._chdb_store import ChDBStore

        store: Store = ChDBStore(target.chdb_path, target.settings)
    else:
        from closedloop.store._server_store import ClickHouseServerStore

        store = ClickHouseServerStore(target.settings, **target.server)
    if migrate:
        try:
            store.migrate()
        except Exception:
            store.close()
            raise
    return store


def location(url: str) -> tuple[str, str]:
    """``(Store.location, database)`` of the store ``url`` names, without connecting."""
    target = _parse(url)
    if target.chdb_path is not None:
        from closedloop.store._chdb_store import chdb_location

        return chdb_location(target.chdb_path), target.settings.database
    from closedloop.store._server_store import server_location

    return server_location(target.server["host"], target.server["port"]), target.settings.database
