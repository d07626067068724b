"""A bounded on-disk queue of insert batches, for when the store is down or slow.

Each batch is one file, written to a temporary name, fsynced and renamed, and the directory
fsynced after the renames, so a crash (or a power cut) never leaves half a batch and never
loses one the caller was told is spooled. File names carry the batch's sequence number
(given at export time), so replay follows export order whenever a batch was spooled, also
after a restart, and the batch's id, the insert's deduplication token: a batch inserted
just before a crash and replayed after it is stored once. When the byte bound would be
exceeded the batch is refused and the caller counts it dropped.
Batches taken over from another directory (an orphaned spool) are kept even beyond the
bound: they were acknowledged; new batches wait until replay makes room.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from closedloop import _health as health

# ``<sequence>.<table>.<spans>.<id>.jsonl``; files spooled before batches had ids lack it.
# A batch coalesced from the batches numbered <sequence> to <last> is
# ``<sequence>-<last>.<table>.<spans>.<id>.jsonl``.
_NAME = re.compile(r"^(\d{12})(?:-(\d{12}))?\.([a-z_]+)\.(\d+)(?:\.([0-9a-f]{32}))?\.jsonl$")


def new_batch_id() -> str:
    """A batch's id: random, so two processes (or two exporters) never share one."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Batch:
    """Rows for one table, ready to insert (JSONEachRow bytes), in export order. ``id``
    is the insert's deduplication token; empty for batches spooled by an older release."""

    sequence: int
    table: str
    body: bytes
    spans: int
    id: str


@dataclass(frozen=True, order=True)
class _Entry:
    sequence: int
    path: Path = field(compare=False)
    table: str = field(compare=False)
    spans: int = field(compare=False)
    size: int = field(compare=False)
    id: str = field(compare=False)
    last: int | None = field(compare=False, default=None)
    """A coalesced batch: the last sequence of the batches it replaced (``sequence`` is the
    first)."""

    @property
    def end(self) -> int:
        return self.sequence if self.last is None else self.last


def _file_name(
    sequence: int, table: str, spans: int, batch_id: str, last: int | None = None
) -> str:
    numbers = f"{sequence:012d}" if last is None else f"{sequence:012d}-{last:012d}"
    return f"{numbers}.{table}.{spans}{'.' + batch_id if batch_id else ''}.jsonl"


def _entries(directory: Path) -> list[_Entry]:
    """The batches spooled under ``directory``. Half-written files (a crash while spooling;
    never durable, so never counted as spooled) are removed."""
    for leftover in directory.glob("*.tmp"):
        leftover.unlink(missing_ok=True)
    entries = sorted(
        _Entry(
            int(match.group(1)),
            path,
            match.group(3),
            int(match.group(4)),
            path.stat().st_size,
            match.group(5) or "",
            int(match.group(2)) if match.group(2) else None,
        )
        for path in directory.iterdir()
        if (match := _NAME.match(path.name))
    )
    return _without_coalesced(entries)


def _without_coalesced(entries: list[_Entry]) -> list[_Entry]:
    """``entries`` less the batches a coalesced batch holds already (a crash came before
    they were removed). Every number in its range was a spooled batch then, and no batch
    is numbered again: one for its table numbered inside the range is one of its parts."""
    ranges = [entry for entry in entries if entry.last is not None]
    if not ranges:
        return entries
    kept = []
    for entry in entries:
        part = entry.last is None and any(
            other.table == entry.table and other.sequence <= entry.sequence <= other.end
            for other in ranges
        )
        if part:
            entry.path.unlink(missing_ok=True)
        else:
            kept.append(entry)
    return kept


def sync_directory(directory: Path) -> None:
    """Make the renames and removals in ``directory`` durable (a rename is only in the
    directory's metadata until the directory itself is fsynced)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_durably(path: Path, body: bytes) -> None:
    """``path`` holds ``body`` on disk, or (after a crash) is unchanged; the caller fsyncs
    the directory."""
    temporary = path.with_suffix(".tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


class Spool:
    """Batches under ``directory`` ordered by sequence, at most ``max_bytes`` in total."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries = _entries(self.directory)
        self.bytes = sum(entry.size for entry in self._entries)
        self._fresh: set[int] = set()
        """Batches this process spooled and never handed out: only these may coalesce, as
        one handed out may have been inserted under its own token already."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def spans(self) -> int:
        return sum(entry.spans for entry in self._entries)

    @property
    def next_sequence(self) -> int:
        """A sequence number above every spooled batch (for numbering after a restart)."""
        return max(entry.end for entry in self._entries) + 1 if self._entries else 0

    def head_sequence(self) -> int | None:
        with self._lock:
            return self._entries[0].sequence if self._entries else None

    def __contains__(self, sequence: int) -> bool:
        with self._lock:
            return self._find(sequence) is not None

    def append(self, batch: Batch) -> bool:
        """Store ``batch`` in sequence order; False (nothing written) if over the bound."""
        return self.append_all([batch]) == 1

    def append_all(self, batches: Sequence[Batch]) -> int:
        """Store the leading ``batches`` that fit under the bound, with one directory fsync
        for all of them (a group commit); how many are stored durably. A disk error stops
        the group there (recorded); when the directory cannot be fsynced, none counts."""
        written = 0
        with self._lock:
            try:
                for batch in batches:
                    if self.bytes + len(batch.body) > self.max_bytes:
                        break
                    name = _file_name(batch.sequence, batch.table, batch.spans, batch.id)
                    final = self.directory / name
                    _write_durably(final, batch.body)
                    entry = _Entry(
                        batch.sequence, final, batch.table, batch.spans, len(batch.body), batch.id
                    )
                    bisect.insort(self._entries, entry)
                    self.bytes += entry.size
                    self._fresh.add(entry.sequence)
                    written += 1
                if written:
                    sync_directory(self.directory)
            except OSError as error:
                health.record_failure("store.spool.write", error)
                return 0
        return written

    def peek(self, coalesce_up_to: int = 0, coalesce_below: int | None = None) -> Batch | None:
        """The oldest batch, left in place until ``remove``. A batch file deleted behind
        the spool's back is forgotten (counted), so it cannot stop the batches after it.

        ``coalesce_up_to``: first join the oldest batch with the ones numbered right after
        it for the same table, up to that many spans, into one batch with an id of its
        own, so that they are inserted (and replayed after a crash) as one. Only batches
        never handed out before join, and only those numbered below ``coalesce_below``:
        the caller holds no batch numbered from there on that it may spool later."""
        while True:
            with self._lock:
                if not self._entries:
                    return None
                if coalesce_up_to:
                    self._coalesce_head(coalesce_up_to, coalesce_below)
                entry = self._entries[0]
                self._fresh.discard(entry.sequence)
            try:
                body = entry.path.read_bytes()
                return Batch(entry.sequence, entry.table, body, entry.spans, entry.id)
            except FileNotFoundError as error:
                health.record_failure("store.spool.vanished", error)
                health.count("store.spool.vanished_spans", entry.spans)
                self.remove(entry.sequence)

    def _coalesce_head(self, max_spans: int, below: int | None) -> None:
        """Replace the oldest batch and the fresh ones for its table after it by one batch
        (lock held); batches for other tables in between stay. No batch numbered inside
        the new one's range can be spooled later (new batches are numbered above every
        spooled one, and the caller holds none below ``below``), so every batch for its
        table in that range is one of its parts. The new file is durable before the parts
        go; a crash in between leaves both, and loading drops the parts
        (``_without_coalesced``)."""
        run = self._entries[:1]
        if run[0].sequence not in self._fresh:
            return
        spans = run[0].spans
        for entry in self._entries[1:]:
            if below is not None and entry.sequence >= below:
                break
            if entry.table != run[0].table:
                continue
            if entry.sequence not in self._fresh or spans + entry.spans > max_spans:
                break
            run.append(entry)
            spans += entry.spans
        if len(run) < 2:
            return
        first, last = run[0], run[-1]
        batch_id = new_batch_id()
        path = self.directory / _file_name(
            first.sequence, first.table, spans, batch_id, last.sequence
        )
        try:
            body = b"".join(entry.path.read_bytes() for entry in run)
            _write_durably(path, body)
        except OSError as error:  # the batches stay as they are, inserted one by one
            health.record_failure("store.spool.coalesce", error)
            return
        try:  # a part left behind is dropped when the spool is next loaded
            for entry in run:
                entry.path.unlink(missing_ok=True)
            sync_directory(self.directory)
        except OSError as error:
            health.record_failure("store.spool.coalesce", error)
        merged = _Entry(
            first.sequence, path, first.table, spans, len(body), batch_id, last.sequence
        )
        parts = {id(entry) for entry in run}
        self._entries = [merged, *(entry for entry in self._entries if id(entry) not in parts)]
        self._fresh.difference_update(entry.sequence for entry in run)
        self._fresh.add(merged.sequence)

    def remove(self, sequence: int) -> None:
        """Forget a batch (after it was inserted)."""
        with self._lock:
            index = self._find(sequence)
            if index is None:
                return
            entry = self._entries.pop(index)
            self.bytes -= entry.size
        entry.path.unlink(missing_ok=True)

    def replace(self, batch: Batch) -> None:
        """Keep only ``batch``'s rows under its sequence (part of it was inserted or set
        aside). Overwritten in place first, renamed after: a crash never duplicates rows."""
        with self._lock:
            index = self._find(batch.sequence)
            if index is None:
                return
            old = self._entries[index]
            _write_durably(old.path, batch.body)
            name = _file_name(batch.sequence, batch.table, batch.spans, batch.id, old.last)
            path = old.path.with_name(name)
            old.path.rename(path)
            sync_directory(self.directory)
            self._entries[index] = _Entry(
                batch.sequence, path, batch.table, batch.spans, len(batch.body), batch.id, old.last
            )
            self.bytes += len(batch.body) - old.size

    def adopt(self, directory: Path) -> int:
        """Move the batches spooled under ``directory`` behind ours, in their order; the
        spans taken over. Each file moves by rename, so a crash leaves each batch in
        exactly one of the two directories."""
        taken = 0
        with self._lock:
            for entry in _entries(directory):  # parts of coalesced batches dropped
                sequence = max(own.end for own in self._entries) + 1 if self._entries else 0
                name = _file_name(sequence, entry.table, entry.spans, entry.id)
                path = self.directory / name
                entry.path.rename(path)
                self._entries.append(
                    _Entry(sequence, path, entry.table, entry.spans, entry.size, entry.id)
                )
                self.bytes += entry.size
                taken += entry.spans
            if taken:
                sync_directory(self.directory)
        return taken

    def _find(self, sequence: int) -> int | None:
        """Index of the entry for ``sequence`` (lock held)."""
        index = bisect.bisect_left(self._entries, sequence, key=lambda entry: entry.sequence)
        found = index < len(self._entries) and self._entries[index].sequence == sequence
        return index if found else None
