"""Where an exporter spools, with one live owner per spool directory.

The default place is stable per store, so a process restarted after a crash finds what
its predecessor spooled: ``<state>/spool/<name>-<hash>``, where ``<state>`` is
``$CLOSEDLOOP_HOME``, else ``$XDG_STATE_HOME/closedloop``, else ``~/.local/state/closedloop``,
and the name and hash come from the store's location and database (never credentials).

Ownership is an exclusive ``flock`` on ``spool.lock`` (which holds the owner's pid, for
people). A second exporter for the same store (in this process or another) finds the lock
taken and spools in ``process-<pid>-<n>/`` inside the same directory instead. Locks die
with their process, so a ``process-*`` directory whose lock can be taken is an orphan: the
next exporter to start adopts its batches and removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

logger = logging.getLogger("closedloop.store")

LOCK_FILE = "spool.lock"
_PROCESS_PREFIX = "process-"


def state_directory() -> Path:
    """closedloop's per-machine state: ``$CLOSEDLOOP_HOME``, else the XDG state directory."""
    home = os.environ.get("CLOSEDLOOP_HOME")
    if home:
        return Path(home)
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "closedloop"


def _spool_root() -> Path:
    """``<state>/spool``, or a per-user directory under the system temp dir when the state
    directory cannot be created (a service account without a writable home)."""
    root = state_directory() / "spool"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fallback = Path(tempfile.gettempdir()) / f"closedloop-{os.getuid()}" / "spool"
        logger.warning(
            "closedloop: cannot create %s (%s); spooling under %s instead. Set "
            "CLOSEDLOOP_HOME to a persistent, writable directory.",
            root,
            error,
            fallback,
        )
        return fallback
    return root


def default_directory(location: str, database: str) -> Path:
    """The spool directory for the store at ``location`` (``Store.location``)."""
    key = f"{location}/{database}"
    label = re.sub(r"[^A-Za-z0-9_.]+", "-", key.partition("://")[2]).strip("-.")[-48:]
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return _spool_root() / f"{label}-{digest}"


def _try_lock(path: Path, *, create: bool) -> IO[str] | None:
    """``path`` locked by this process, or None: a live process holds it (or, unless
    ``create``, there is no lock file)."""
    try:
        handle = path.open("a+" if create else "r+")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # still the file at ``path``, not one an adopter removed while we waited
        current = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except (BlockingIOError, FileNotFoundError):
        current = False
    if not current:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _remove_if_empty(directory: Path) -> None:
    """Remove a per-process spool that holds nothing but its lock file."""
    if any(path.name != LOCK_FILE for path in directory.iterdir()):
        return
    (directory / LOCK_FILE).unlink(missing_ok=True)
    directory.rmdir()


class OwnedSpool:
    """The spool directory this exporter owns (``directory``) inside ``home``."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        lock = _try_lock(self.home / LOCK_FILE, create=True)
        self.directory = self.home
        numbers = itertools.count(1)
        while lock is None:
            self.directory = self.home / f"{_PROCESS_PREFIX}{os.getpid()}-{next(numbers)}"
            self.directory.mkdir(exist_ok=True)
            lock = _try_lock(self.directory / LOCK_FILE, create=True)
        self._lock: IO[str] | None = lock

    def orphans(self) -> Iterator[Path]:
        """Per-process spools whose owner is gone, each locked while the caller adopts
        its batches, then removed."""
        for directory in sorted(self.home.glob(f"{_PROCESS_PREFIX}*")):
            if directory == self.directory or not directory.is_dir():
                continue
            lock = _try_lock(directory / LOCK_FILE, create=False)
            if lock is None:
                continue
            try:
                yield directory
                _remove_if_empty(directory)
            finally:
                lock.close()

    def release(self) -> None:
        """Give the directory up (a per-process one is removed when empty)."""
        if self._lock is None:
            return
        if self.directory != self.home:
            _remove_if_empty(self.directory)
        self._lock.close()
        self._lock = None
