"""The times closedloop stores, in one place: the OTLP receiver rejects spans outside them
and ``feedback.record`` refuses timestamps outside them, for the same reasons."""

from __future__ import annotations

from typing import Final

EARLIEST_S: Final = 946_684_800
"""2000-01-01T00:00:00Z: an earlier time is a broken clock or a unit mistake, not data."""
EARLIEST_NS: Final = EARLIEST_S * 10**9
LATEST_NS: Final = 4_102_444_800 * 10**9
"""2100-01-01T00:00:00Z: the tables' TTLs and sort keys go through 32-bit ``DateTime``,
which ends on 2106-02-07; a later span would be acknowledged, then lost to its TTL."""
