"""Sticky, monotone routing: a unit's bucket, and which version owns each bucket.

The hash. ``bucket = uint64_be(BLAKE2b(data=unit, key=experiment, digest_size=8)) % 10000``
with ``unit`` and ``experiment`` UTF-8 encoded. BLAKE2b is in every language's standard
or common library and is keyed natively, so the same unit gets the same bucket in every
process, machine and Python version (``hash()`` is salted per process), and a unit's
bucket in one experiment says nothing about its bucket in another. The key is the
experiment id from the prompt file, not a secret: routing needs the same answer
everywhere, and the bucket is never stored. Changing the experiment id re-randomises
every unit; do it when a new experiment starts, never during one. (2^64 is not a
multiple of 10,000; the resulting bias is below 10^-15 per bucket.)

The layout. Each version owns one fixed range of the 10,000 buckets (a share is in
steps of 0.01 %, one bucket). Testing versions are stacked from the top, in natural
order of their names (``v2`` < ``v10``): the first takes the highest buckets, the next
the buckets right below it, and production owns everything from 0 up to the stack.
Hence, exactly:

- changing the share of the *last* testing version in that order (the only one, in the
  usual experiment) moves only the buckets between its old and new lower edge, between
  it and production; no other unit moves;
- removing the last testing version (retired, shadow, or deleted) gives its buckets to
  production only;
- adding a testing version whose name sorts after the others moves buckets from
  production only.

The limit: a change to a testing version that is *not* last shifts the ranges of those
after it, so their units move too. Change one version at a time, starting from the last,
or end the experiment (a new experiment id) before changing an earlier one. No layout
can do better for three or more versions that each change independently while the
shares stay exact, and this one needs no state besides the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

BUCKETS = 10_000
"""Buckets per experiment: shares are in steps of 0.01 %."""
BUCKETS_PER_PERCENT = BUCKETS // 100

_DIGITS = re.compile(r"(\d+)")


def keyed_hasher(experiment: str) -> hashlib.blake2b:
    """BLAKE2b-64 keyed with the experiment id, to ``copy()`` per unit (saves the key setup)."""
    return hashlib.blake2b(key=experiment.encode(), digest_size=8)


def bucket(experiment: str, unit: str) -> int:
    """The bucket (0 to 9,999) of ``unit`` in ``experiment``; see the module docstring."""
    digest = hashlib.blake2b(unit.encode(), key=experiment.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: ``v2`` before ``v10``."""
    parts = _DIGITS.split(name)
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in parts if part)


def stack_order(names: Iterable[str]) -> list[str]:
    """Testing versions in the order they are stacked from the top bucket down."""
    return sorted(names, key=lambda name: (natural_key(name), name))


def bucket_ranges(production: str, testing: Sequence[tuple[str, int]]) -> dict[str, range]:
    """Each serving version's range of buckets; ``testing`` is (name, buckets) pairs whose
    buckets add up to at most :data:`BUCKETS`."""
    sizes = dict(testing)
    ranges: dict[str, range] = {}
    top = BUCKETS
    for name in stack_order(sizes):
        ranges[name] = range(top - sizes[name], top)
        top -= sizes[name]
    ranges[production] = range(0, top)
    return ranges
