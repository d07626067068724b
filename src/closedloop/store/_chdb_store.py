"""Embedded store: chDB (in-process ClickHouse) in a local directory.

chDB lets one process own a directory, and one directory per process. closedloop takes
an advisory lock file naming its PID first, so a second process gets an error that says
who holds the store instead of chDB's opaque one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from closedloop._extras import require
from closedloop.store._base import (
    DEDUPLICATION_SETTINGS,
    INSERT_SETTINGS,
    QUERY_SETTINGS,
    OutputFormat,
    Store,
    refused_rows,
)
from closedloop.store._errors import StoreDataError, StoreError, StoreLockedError
from closedloop.store._schema import SchemaSettings

LOCK_FILE = "closedloop.lock"


_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _literal(value: Any) -> str:
    """A value inside an Array/Tuple parameter: quoted the way ClickHouse literals are."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (bytes, bytearray)):
        return "'" + parameter_text(value) + "'"
    return parameter_text(value)


def parameter_text(value: Any) -> str:
    """A ``{name:Type}`` parameter value in ClickHouse's escaped text form, as the HTTP
    interface takes it (chDB binds the same text): strings TSV-escaped, bytes as ``\\xNN``
    escapes, arrays as literals."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value.translate(_TEXT_ESCAPES)
    if isinstance(value, (bytes, bytearray)):
        # the bytes themselves, as a ClickHouse String holds them (clickhouse-connect's
        # server-side binding does the same), never Python's "b'...'" spelling
        return "".join(f"\\x{byte:02x}" for byte in value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return "[" + ",".join(_literal(item) for item in items) + "]"
    return str(value).translate(_TEXT_ESCAPES)


def chdb_location(path: str | os.PathLike[str]) -> str:
    return f"chdb://{Path(path).resolve()}"


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text().strip()
    except OSError:
        return "another process"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = ""
    return f"process {pid}" + (f" ({command})" if command else "")


class ChDBStore(Store):
    """A chDB session on ``path``; thread-safe (statements are serialised)."""

    def __init__(self, path: str | os.PathLike[str], settings: SchemaSettings) -> None:
        super().__init__(settings)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = None
        self.reopen()

    @property
    def location(self) -> str:
        return chdb_location(self.path)

    def reopen(self) -> None:
        """Take the directory (again): after ``close()``, the same store object works again."""
        with self._lock:
            if self._lock_file is not None:
                return
            session = require("chdb.session", "store", "The embedded chDB store")
            self._lock_file = self._acquire(self.path / LOCK_FILE)
            try:
                self._session: Any = session.Session(str(self.path))
                for name, value in QUERY_SETTINGS.items():
                    self._session.query(f"SET {name} = {value}")
            except Exception as error:
                self._release()
                raise StoreError(f"cannot open chDB store at {self.path}: {error}") from error

    @staticmethod
    def _acquire(lock_path: Path) -> IO[str]:
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreLockedError(
                f"the chDB store at {lock_path.parent} is in use by {_holder(lock_path)}. "
                "chDB lets one process open a directory: stop that process, or point this "
                "one at another directory."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _execute(self, sql: str, parameters: Mapping[str, Any] | None) -> None:
        self._fetch(sql, parameters)

    def _fetch(
        self, sql: str, parameters: Mapping[str, Any] | None, fmt: OutputFormat = "JSONEachRow"
    ) -> bytes:
        with self._lock:
            self._require_open()
            try:
                params = {key: parameter_text(value) for key, value in (parameters or {}).items()}
                result = self._session.query(sql, fmt, params=params)
            except Exception as error:
                raise StoreError(f"chDB rejected the statement: {error}") from error
        body: bytes = result.bytes()  # chDB ships no type information
        return body

    def _insert(self, table: str, body: bytes, token: str | None) -> None:
        settings: dict[str, object] = dict(INSERT_SETTINGS)
        if token is not None:  # checked by insert_encoded: hex and colons only
            settings |= {**DEDUPLICATION_SETTINGS, "insert_deduplication_token": f"'{token}'"}
        statement = f"INSERT INTO {self.database}.{table} SETTINGS " + ", ".join(
            f"{k} = {v}" for k, v in settings.items()
        )
        with self._lock:
            self._require_open()
            try:
                # leaving the block unfinished cancels the insert: a failed append must
                # not leave the session busy ("another insert is already active")
                with self._session.send_insert(statement, "JSONEachRow") as inserter:
                    inserter.append(body)
                    inserter.finish()
            except Exception as error:
                kind = StoreDataError if refused_rows(error) else StoreError
                raise kind(f"chDB rejected the insert into {table}: {error}") from error

    def _require_open(self) -> None:
        if self._lock_file is None:
            raise StoreError(f"the chDB store at {self.path} is closed.")

    def close(self) -> None:
        with self._lock:
            if self._lock_file is None:
                return
            try:
                self._session.close()
            finally:
                self._release()
