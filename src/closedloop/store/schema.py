"""Versioned schema: the ``.sql`` files under ``sql/`` applied in order, once each.

A store records each applied file in ``closedloop_migrations``; ``migrate()`` applies only
the files it has not seen, so re-running is a no-op and an older store catches up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SchemaSettings:
    """Names and retention that the SQL templates are filled with."""

    database: str = "closedloop"
    traces_ttl_days: int = 90
    recent_ttl_days: int = 3

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.database):
            raise ValueError(
                f"database={self.database!r} is not a plain identifier; use letters, digits "
                "and underscores, starting with a letter."
            )
        for field in ("traces_ttl_days", "recent_ttl_days"):
            days = getattr(self, field)
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(f"{field} must be a whole number of days >= 1, got {days!r}.")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def render(sql: str, settings: SchemaSettings) -> str:
    return Template(sql).substitute(
        database=settings.database,
        traces_ttl_days=settings.traces_ttl_days,
        recent_ttl_days=settings.recent_ttl_days,
    )


def split_statements(sql: str) -> tuple[str, ...]:
    """Statements of a file; each ends with ``;`` at the end of a line."""
    return tuple(part.strip() for part in _STATEMENT_END.split(sql) if part.strip())


def migrations(settings: SchemaSettings) -> list[Migration]:
    """Every migration shipped with this version of closedloop, in order."""
    found = []
    for entry in resources.files("closedloop.store").joinpath("sql").iterdir():
        match = _FILE.match(entry.name)
        if match:
            sql = render(entry.read_text(encoding="utf-8"), settings)
            found.append(Migration(int(match.group(1)), match.group(2), split_statements(sql)))
    return sorted(found, key=lambda migration: migration.version)


def bootstrap_statements(settings: SchemaSettings) -> tuple[str, ...]:
    """The database and the migrations ledger, created before any migration runs."""
    database = settings.database
    return (
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.closedloop_migrations ("
        "version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)"
        ") ENGINE = MergeTree() ORDER BY version",
    )
