"""A bounded on-disk queue of insert batches, for when the store stays down.

Each batch is one file, written to a temporary name, fsynced and renamed, so a crash never
leaves half a batch. File names carry the batch's sequence number (given at export time),
so replay follows export order whenever a batch was spooled, also after a restart. When
the byte bound would be exceeded the batch is refused and the caller counts it dropped.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

_NAME = re.compile(r"^(\d{12})\.([a-z_]+)\.(\d+)\.jsonl$")


@dataclass(frozen=True)
class Batch:
    """Rows for one table, ready to insert (JSONEachRow bytes), in export order."""

    sequence: int
    table: str
    body: bytes
    spans: int


@dataclass(frozen=True, order=True)
class _Entry:
    sequence: int
    path: Path = field(compare=False)
    table: str = field(compare=False)
    spans: int = field(compare=False)
    size: int = field(compare=False)


class Spool:
    """Batches under ``directory`` ordered by sequence, at most ``max_bytes`` in total."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_spool_bytes must be >= 1, got {max_bytes!r}.")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: list[_Entry] = sorted(
            _Entry(
                int(match.group(1)), path, match.group(2), int(match.group(3)), path.stat().st_size
            )
            for path in self.directory.iterdir()
            if (match := _NAME.match(path.name))
        )
        self.bytes = sum(entry.size for entry in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def spans(self) -> int:
        return sum(entry.spans for entry in self._entries)

    @property
    def next_sequence(self) -> int:
        """A sequence number above every spooled batch (for numbering after a restart)."""
        return self._entries[-1].sequence + 1 if self._entries else 0

    def head_sequence(self) -> int | None:
        with self._lock:
            return self._entries[0].sequence if self._entries else None

    def append(self, batch: Batch) -> bool:
        """Store ``batch`` in sequence order; False (nothing written) if over the bound."""
        with self._lock:
            if self.bytes + len(batch.body) > self.max_bytes:
                return False
            final = self.directory / f"{batch.sequence:012d}.{batch.table}.{batch.spans}.jsonl"
            temporary = final.with_suffix(".tmp")
            with temporary.open("wb") as handle:
                handle.write(batch.body)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.rename(final)
            entry = _Entry(batch.sequence, final, batch.table, batch.spans, len(batch.body))
            bisect.insort(self._entries, entry)
            self.bytes += entry.size
            return True

    def peek(self) -> Batch | None:
        """The oldest batch, left in place until ``pop``."""
        with self._lock:
            if not self._entries:
                return None
            entry = self._entries[0]
        return Batch(entry.sequence, entry.table, entry.path.read_bytes(), entry.spans)

    def pop(self) -> None:
        """Forget the oldest batch (after it was inserted)."""
        with self._lock:
            entry = self._entries.pop(0)
            self.bytes -= entry.size
        entry.path.unlink(missing_ok=True)
