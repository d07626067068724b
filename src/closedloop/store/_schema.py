"""The schema as shipped: numbered table migrations, view files, and the ledger's SQL.

Tables change only by new numbered files under ``sql/`` (``NNN_name.sql``), each applied
once per store; a landed file is never edited, and each carries its SHA-256 so a store can
tell (see ``ledger``). Views live one per file under ``sql/views/`` (``NN_name.sql``) and
are re-created on every ``migrate()``, so a view changes by one edit of its file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_VIEW_FILE = re.compile(r"^(\d{2})_([a-z0-9_]+)\.sql$")
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
    """One numbered table migration; ``checksum`` is the SHA-256 of the file as shipped
    (before the settings are filled in), what the ledger compares."""

    version: int
    name: str
    checksum: str
    statements: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"


@dataclass(frozen=True)
class View:
    """One view file: its statements (one ``CREATE OR REPLACE VIEW``)."""

    order: int
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


def checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes, in hex (as ``sha256sum`` prints it)."""
    return hashlib.sha256(data).hexdigest()


def migrations(settings: SchemaSettings) -> list[Migration]:
    """Every table migration shipped with this version of closedloop, in order."""
    found = []
    for entry in resources.files("closedloop.store").joinpath("sql").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            data = entry.read_bytes()
            statements = split_statements(render(data.decode("utf-8"), settings))
            found.append(Migration(int(match.group(1)), match.group(2), checksum(data), statements))
    return sorted(found, key=lambda migration: migration.version)


def views(settings: SchemaSettings) -> list[View]:
    """Every view file, in the order they are created (a view after those it reads)."""
    found = []
    for entry in resources.files("closedloop.store").joinpath("sql", "views").iterdir():
        match = _VIEW_FILE.match(entry.name)
        if match:
            sql = render(entry.read_text(encoding="utf-8"), settings)
            found.append(View(int(match.group(1)), match.group(2), split_statements(sql)))
    return sorted(found, key=lambda view: view.order)


def statements(name: str, settings: SchemaSettings) -> tuple[str, ...]:
    """The statements of an unnumbered file under ``sql/`` (the ledger's own SQL)."""
    text = resources.files("closedloop.store").joinpath("sql", name).read_text("utf-8")
    return split_statements(render(text, settings))


def query(name: str, settings: SchemaSettings) -> str:
    """A query shipped under ``queries/`` (``{name:Type}`` parameters left for binding)."""
    text = resources.files("closedloop.store").joinpath("queries", name).read_text("utf-8")
    return render(text, settings)
